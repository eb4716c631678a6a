//! The seed's estimate formula against hand-computed cases, the running cost, the budget
//! effect and the quality score.

// Inside `mod training` so that `cargo test -p brightrun-engine training` selects these.
mod training {
    use brightrun_engine::config::{BudgetConfig, TrainingConfig};
    use brightrun_engine::domain::{
        Convergence, DatasetStatistics, Hyperparameters, MethodName, PreferenceStatistics,
    };
    use brightrun_engine::training::{
        self, EstimateError, EstimateInput, FitVerdict, GpuCatalog, budget_effect, presets,
        quality, running_cost,
    };
    use chrono::{Duration, TimeZone, Utc};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    macro_rules! assert_close {
        ($a:expr, $b:expr) => {
            assert!(
                close($a, $b),
                "{} = {} (expected {})",
                stringify!($a),
                $a,
                $b
            )
        };
    }

    fn stats(train: u64, val: u64, tokens: u64) -> DatasetStatistics {
        DatasetStatistics {
            total_examples: train + val,
            total_training_pairs: train,
            total_validation_pairs: val,
            total_tokens: tokens,
            tokens_p95: 600,
            tokens_max: 900,
            ..Default::default()
        }
    }

    fn preset(name: &str) -> Hyperparameters {
        presets::resolve(name, &TrainingConfig::default())
            .unwrap()
            .1
    }

    struct Case {
        stats: DatasetStatistics,
        hp: Hyperparameters,
        gpu: &'static str,
        gpus: u32,
        training: TrainingConfig,
        budget: BudgetConfig,
        spent: f64,
        parameters_billions: Option<f64>,
        calibration: Option<training::Calibration>,
    }

    impl Case {
        fn new(
            stats: DatasetStatistics,
            hp: Hyperparameters,
            gpu: &'static str,
            gpus: u32,
        ) -> Self {
            Self {
                stats,
                hp,
                gpu,
                gpus,
                training: TrainingConfig::default(),
                budget: BudgetConfig::default(),
                spent: 0.0,
                parameters_billions: None,
                calibration: None,
            }
        }

        fn run(&self) -> Result<training::Estimate, EstimateError> {
            let catalog = GpuCatalog::from_config(&self.training).unwrap();
            training::estimate(&EstimateInput {
                statistics: &self.stats,
                hyperparameters: &self.hp,
                gpu_type: self.gpu,
                gpu_count: self.gpus,
                catalog: &catalog,
                training: &self.training,
                parameters_billions: self.parameters_billions,
                budget: &self.budget,
                spent_this_month: self.spent,
                calibration: self.calibration,
                evaluation: None,
            })
        }
    }

    /// A preference file of 1000 pairs: prompts of 100 tokens, chosen replies of 250 and
    /// rejected of 150 (500,000 tokens in all, as the validator counts them).
    fn pair_stats() -> DatasetStatistics {
        DatasetStatistics {
            preference: Some(PreferenceStatistics {
                pairs: 1000,
                prompt_tokens: 100_000,
                chosen_tokens: 250_000,
                rejected_tokens: 150_000,
                sequence_tokens_max: 700,
                ..Default::default()
            }),
            ..stats(1000, 0, 500_000)
        }
    }

    #[test]
    fn each_method_costs_its_training_flops_per_token() {
        // The same balanced values for every method, so only the method's work differs.
        let run = |method: MethodName| {
            let mut hp = preset("balanced");
            hp.method = method.with_defaults();
            let stats = if method == MethodName::Kto {
                stats(1000, 0, 500_000)
            } else {
                pair_stats()
            };
            Case::new(stats, hp, "A100-80GB", 1).run().unwrap()
        };
        // A pair is the prompt twice with both replies: (100 + 250) + (100 + 150) = 600.
        //   ORPO and SimPO: 6 FLOPs per token per parameter, SFT's throughput (1800/s):
        //   seconds/step = 600 × 4 / 1800.
        for m in [MethodName::Orpo, MethodName::Simpo] {
            let d = run(m).training_details;
            assert_close!(d.tokens_per_example, 600.0);
            assert_close!(d.estimated_throughput_tokens_per_sec, 1800.0);
            assert_close!(d.seconds_per_step, 600.0 * 4.0 / 1800.0);
        }
        //   DPO adds the reference's forward: 8 FLOPs, throughput × 6/8.
        let dpo = run(MethodName::Dpo);
        assert_close!(
            dpo.training_details.estimated_throughput_tokens_per_sec,
            1350.0
        );
        assert_close!(dpo.training_details.seconds_per_step, 600.0 * 4.0 / 1350.0);
        assert_close!(
            dpo.throughput.training_flops_per_token,
            8.0 * dpo.model.parameters as f64
        );
        assert!(
            dpo.throughput.note.contains("× 0.750 for dpo"),
            "{}",
            dpo.throughput.note
        );
        //   KTO: unpaired examples of 500 tokens, 12 FLOPs (reference, KL through both).
        let kto = run(MethodName::Kto).training_details;
        assert_close!(kto.tokens_per_example, 500.0);
        assert_close!(kto.estimated_throughput_tokens_per_sec, 900.0);
        // Each pair is two sequences in one pass: the activations double against SFT's.
        let sft = {
            let mut hp = preset("balanced");
            hp.method = MethodName::Sft.with_defaults();
            Case::new(pair_stats(), hp, "A100-80GB", 1).run().unwrap()
        };
        assert_close!(
            dpo.fit.breakdown.activations_gb,
            2.0 * sft.fit.breakdown.activations_gb
        );
        // A calibration of DPO runs already holds the method's work.
        let mut hp = preset("balanced");
        hp.method = MethodName::Dpo.with_defaults();
        let mut case = Case::new(pair_stats(), hp, "A100-80GB", 1);
        case.calibration = Some(training::Calibration {
            runs: 2,
            tokens_per_sec: 1000.0,
        });
        let e = case.run().unwrap();
        assert_close!(
            e.training_details.estimated_throughput_tokens_per_sec,
            1000.0
        );
    }

    #[test]
    fn preference_presets_train_more_gently_and_sft_keeps_the_seeds() {
        let cfg = TrainingConfig::default();
        for name in ["fast", "balanced", "quality"] {
            let (_, sft) = presets::resolve(name, &cfg).unwrap();
            let (id, dpo) = presets::resolve_for(name, &cfg, MethodName::Dpo).unwrap();
            assert_eq!(id.as_str(), name);
            assert_eq!(
                sft,
                presets::resolve_for(name, &cfg, MethodName::Sft).unwrap().1
            );
            assert!(dpo.learning_rate < sft.learning_rate, "{name}");
            assert!(dpo.batch_size < sft.batch_size, "{name}");
            assert_eq!(dpo.method, MethodName::Dpo.with_defaults());
        }
        let (_, seed) = presets::resolve("balanced", &cfg).unwrap();
        assert_eq!(
            (
                seed.learning_rate,
                seed.batch_size,
                seed.epochs,
                seed.lora_rank
            ),
            (5e-5, 4, 3, 16)
        );
    }

    #[test]
    fn seed_defaults_balanced_on_one_a100_80gb() {
        // 1000 training pairs, 500,000 tokens, nothing held out; balanced (batch 4, 3 epochs);
        // one A100-80GB ($3.50/h, 1800 tokens/s); Mistral-7B (the default base model).
        //   steps_per_epoch  = ceil(1000 / 4)            = 250
        //   total_steps      = 250 × 3                   = 750
        //   tokens/example   = 500,000 / 1000            = 500
        //   seconds/step     = 500 × 4 / (1800 × 1)      = 1.1111… s
        //   training hours   = 750 × 1.1111… / 3600      = 0.2314814… h  (833.33 s)
        //   overhead         = 10 + 5 × 3 + 5 = 30 min   = 0.5 h
        //   duration         = 0.2314814… + 0.5          = 0.7314814… h
        //   hourly rate      = 3.50 × 1                  = 3.50 $/h
        //   compute          = 3.50 × 0.7314814…         = 2.5601851… $
        //   storage          = 0.50 $
        //   estimated cost   = 2.5601851… + 0.50         = 3.0601851… $
        let e = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1)
            .run()
            .unwrap();
        let d = &e.training_details;
        assert_eq!(d.steps_per_epoch, 250);
        assert_eq!(d.total_steps, 750);
        assert_eq!(d.optimizer_steps, 750);
        assert_eq!(d.training_examples, 1000);
        assert_eq!(d.epochs, 3);
        assert_eq!(d.effective_batch_size, 4);
        assert_close!(d.tokens_per_example, 500.0);
        assert_close!(d.seconds_per_step, 2000.0 / 1800.0);
        assert_close!(d.estimated_throughput_tokens_per_sec, 1800.0);
        assert_close!(d.training_hours, 750.0 * (2000.0 / 1800.0) / 3600.0);
        assert_close!(d.training_hours, 0.231_481_481_481_481_5);
        assert_close!(d.overhead_hours, 0.5);
        assert_close!(e.estimated_duration_hours, 0.731_481_481_481_481_5);
        assert_close!(e.hourly_rate, 3.5);
        assert_close!(e.cost_breakdown.compute, 2.560_185_185_185_185);
        assert_close!(e.cost_breakdown.storage, 0.5);
        assert_close!(e.estimated_cost, 3.060_185_185_185_185);
        assert_eq!(e.gpu_type, "A100-80GB");
        assert_eq!(e.gpu_count, 1);
        assert_close!(e.price_per_gpu_hour, 3.5);
        assert_eq!(e.model.id, "mistralai/Mistral-7B-v0.1");
        assert_eq!(e.fit.verdict, FitVerdict::Fits);
        assert!(e.fit.suggestions.is_empty());
        assert_eq!(e.budget, None);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        assert!(!e.needs_budget_confirmation());
    }

    #[test]
    fn json_uses_the_seeds_field_names() {
        let e = Case::new(stats(1000, 0, 500_000), preset("balanced"), "a100-80gb", 1)
            .run()
            .unwrap();
        let j = serde_json::to_value(&e).unwrap();
        for key in [
            "estimated_cost",
            "cost_breakdown",
            "estimated_duration_hours",
            "hourly_rate",
            "training_details",
            "fit",
            "budget",
            "gpu_type",
            "gpu_count",
        ] {
            assert!(j.get(key).is_some(), "{key} in {j}");
        }
        assert!(j["cost_breakdown"]["compute"].is_f64());
        assert!(j["cost_breakdown"]["storage"].is_f64());
        let d = &j["training_details"];
        for key in [
            "total_steps",
            "steps_per_epoch",
            "estimated_throughput_tokens_per_sec",
            "tokens_per_example",
            "training_hours",
            "overhead_hours",
        ] {
            assert!(d.get(key).is_some(), "{key} in {d}");
        }
        assert_eq!(d["total_steps"], 750);
        assert_eq!(j["fit"]["verdict"], "fits");
        assert!(j["fit"]["required_gb"].is_f64());
        assert!(j["fit"]["available_gb"].is_f64());
        assert!(j["fit"]["breakdown"].is_object());
        assert!(j["fit"]["suggestions"].is_array());
    }

    #[test]
    fn fast_on_two_h100_with_a_held_out_split() {
        // 1001 training + 111 validation pairs = 1112 examples, 556,000 tokens → 500 per example.
        // fast: batch 8, 1 epoch; two H100 ($4.20/h, 2200 tokens/s each).
        //   steps_per_epoch = ceil(1001 / 8)          = 126 = total_steps
        //   seconds/step    = 500 × 8 / (2200 × 2)    = 0.909090… s
        //   training hours  = 126 × 0.90909… / 3600   = 0.0318181… h
        //   overhead        = 10 + 5 + 5 = 20 min     = 0.333333… h
        //   duration                                  = 0.3651515… h
        //   hourly rate     = 4.20 × 2                = 8.40 $/h
        //   compute         = 8.40 × 0.3651515…       = 3.0672727… $; total 3.5672727… $
        let case = Case::new(stats(1001, 111, 556_000), preset("fast"), "H100", 2);
        let e = case.run().unwrap();
        let d = &e.training_details;
        assert_eq!((d.steps_per_epoch, d.total_steps), (126, 126));
        assert_close!(d.tokens_per_example, 500.0);
        assert_close!(d.estimated_throughput_tokens_per_sec, 4400.0);
        assert_close!(d.seconds_per_step, 4000.0 / 4400.0);
        assert_close!(d.training_hours, 126.0 * (4000.0 / 4400.0) / 3600.0);
        assert_close!(d.overhead_hours, 20.0 / 60.0);
        assert_close!(e.hourly_rate, 8.4);
        let duration = 126.0 * (4000.0 / 4400.0) / 3600.0 + 20.0 / 60.0;
        assert_close!(e.estimated_duration_hours, duration);
        assert_close!(e.cost_breakdown.compute, 8.4 * duration);
        assert_close!(e.cost_breakdown.compute, 3.067_272_727_272_727);
        assert_close!(e.estimated_cost, 3.567_272_727_272_727);

        // Without evaluation the held-out pairs train too: ceil(1112 / 8) = 139 steps.
        let mut no_val = case;
        no_val.hp.use_validation = false;
        let e = no_val.run().unwrap();
        assert_eq!(e.training_details.training_examples, 1112);
        assert_eq!(e.training_details.total_steps, 139);
        assert_close!(
            e.training_details.training_hours,
            139.0 * (4000.0 / 4400.0) / 3600.0
        );
    }

    #[test]
    fn quality_on_three_v100_with_long_examples_capped_at_max_seq_length() {
        // 10 pairs of 3000 tokens each, max_seq_length 2048: each counts as 2048 tokens.
        // quality: batch 2, 5 epochs; three V100-32GB ($2.10/h, 1200 tokens/s each).
        //   steps_per_epoch = ceil(10 / 2) = 5; total_steps = 25
        //   seconds/step    = 2048 × 2 / (1200 × 3) = 1.137777… s
        //   training hours  = 25 × 1.13777… / 3600  = 0.0079012… h
        //   overhead        = 10 + 25 + 5 = 40 min  = 0.666666… h
        //   hourly rate     = 2.10 × 3 = 6.30 $/h; compute = 6.30 × 0.6745679… = 4.2497777… $
        let mut s = stats(10, 0, 30_000);
        s.tokens_p95 = 3000;
        s.tokens_max = 3000;
        let e = Case::new(s, preset("quality"), "V100-32GB", 3)
            .run()
            .unwrap();
        let d = &e.training_details;
        assert_eq!((d.steps_per_epoch, d.total_steps), (5, 25));
        assert_close!(d.tokens_per_example, 2048.0);
        assert_close!(d.seconds_per_step, 4096.0 / 3600.0);
        assert_close!(d.overhead_hours, 40.0 / 60.0);
        assert_close!(e.hourly_rate, 6.3);
        let duration = 25.0 * (4096.0 / 3600.0) / 3600.0 + 40.0 / 60.0;
        assert_close!(e.estimated_duration_hours, duration);
        assert_close!(e.cost_breakdown.compute, 4.249_777_777_777_778);
        assert_close!(e.estimated_cost, 4.749_777_777_777_778);
        assert!(
            e.warnings.iter().any(|w| w.contains("truncated")),
            "{:?}",
            e.warnings
        );
        assert!(
            e.warnings.iter().any(|w| w.contains("no bfloat16")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn gradient_accumulation_changes_optimizer_steps_not_cost() {
        let plain = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1);
        let mut accumulated =
            Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1);
        accumulated.hp.gradient_accumulation_steps = 4;
        let (a, b) = (plain.run().unwrap(), accumulated.run().unwrap());
        assert_eq!(b.training_details.total_steps, 750);
        // ceil(250 / 4) = 63 updates per epoch × 3.
        assert_eq!(b.training_details.optimizer_steps, 189);
        assert_eq!(b.training_details.effective_batch_size, 16);
        assert_eq!(a.estimated_cost, b.estimated_cost);
        assert_eq!(a.estimated_duration_hours, b.estimated_duration_hours);
    }

    #[test]
    fn storage_cost_and_prices_come_from_config() {
        let mut case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1);
        case.training = brightrun_engine::config::Config::parse(
        "[training]\nstorage_cost_per_job = 0.0\n[training.gpus.A100-80GB]\nprice_per_hour = 2.0\n",
    )
    .unwrap()
    .training;
        let e = case.run().unwrap();
        assert_close!(e.cost_breakdown.storage, 0.0);
        assert_close!(e.hourly_rate, 2.0);
        assert_close!(e.estimated_cost, 2.0 * 0.731_481_481_481_481_5);
    }

    #[test]
    fn errors_name_what_to_fix() {
        let mut case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1);
        case.hp.learning_rate = 0.5;
        let e = case.run().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid hyperparameters: learning_rate = 0.5 is outside 1e-5 to 1e-3"
        );

        let case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 9);
        assert_eq!(
            case.run().unwrap_err().to_string(),
            "gpu_count = 9 is outside 1 to 8"
        );

        let case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "TPU", 1);
        assert!(matches!(case.run(), Err(EstimateError::UnknownGpu(_))));

        let case = Case::new(stats(0, 0, 0), preset("balanced"), "A100-80GB", 1);
        assert_eq!(case.run().unwrap_err(), EstimateError::EmptyDataset);

        let mut case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1);
        case.hp.base_model = "acme/mystery-13b".into();
        let e = case.run().unwrap_err();
        assert!(matches!(e, EstimateError::UnknownModel(_)));
        assert!(e.to_string().contains("--set parameters_billions="), "{e}");
        case.parameters_billions = Some(13.0);
        let e = case.run().unwrap();
        assert_eq!(e.model.parameters, 13_000_000_000);
        assert!(
            e.warnings
                .iter()
                .any(|w| w.contains("estimated from its parameter count"))
        );
    }

    #[test]
    fn fit_and_budget_are_part_of_the_estimate() {
        let mut case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A10G", 1);
        case.hp.base_model = "meta-llama/Llama-3.1-8B-Instruct".into();
        case.budget = BudgetConfig {
            monthly_usd: Some(10.0),
        };
        case.spent = 9.0;
        // With the trainer's chunked loss (the default) only one chunk of logits counts.
        let chunked = case.run().unwrap().fit.breakdown.logits_gb;
        // The model's own loss: the whole batch's logits count, and 16 bits do not fit.
        case.training.efficiency.chunked_loss = false;
        let e = case.run().unwrap();
        assert!(e.fit.breakdown.logits_gb > chunked, "{chunked} {:?}", e.fit);
        assert_eq!(e.fit.verdict, FitVerdict::WillNotFit);
        assert!(e.warnings.iter().any(|w| w.contains("run out of memory")));
        let b = e.budget.as_ref().unwrap();
        assert_close!(b.after_this_run, 9.0 + e.estimated_cost);
        assert!(b.exceeds);
        assert!(e.needs_budget_confirmation());
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["fit"]["verdict"], "will_not_fit");
        assert_eq!(j["budget"]["exceeds"], true);

        case.hp.quantization = brightrun_engine::domain::Quantization::FourBit;
        case.hp.batch_size = 2;
        assert_eq!(case.run().unwrap().fit.verdict, FitVerdict::Fits);
    }

    #[test]
    fn running_cost_is_rate_times_hours_since_start() {
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        assert_close!(
            running_cost(3.5, 2, start, start + Duration::minutes(90)),
            10.5
        );
        assert_close!(
            running_cost(4.2, 1, start, start + Duration::seconds(36)),
            0.042
        );
        assert_eq!(running_cost(3.5, 1, start, start), 0.0);
        assert_eq!(running_cost(3.5, 1, start, start - Duration::hours(1)), 0.0);
    }

    // ---- budget ----

    #[test]
    fn budget_effect_cases() {
        let none = BudgetConfig::default();
        assert_eq!(budget_effect(&none, 50.0, 10.0), None);

        let cfg = BudgetConfig {
            monthly_usd: Some(100.0),
        };
        let b = budget_effect(&cfg, 70.0, 15.0).unwrap();
        assert_close!(b.monthly_budget, 100.0);
        assert_close!(b.spent_this_month, 70.0);
        assert_close!(b.after_this_run, 85.0);
        assert_close!(b.percent_after, 85.0);
        assert!(!b.exceeds);
        assert!(b.crosses_80_percent);

        let b = budget_effect(&cfg, 10.0, 5.0).unwrap();
        assert!(!b.exceeds && !b.crosses_80_percent);
        assert_close!(b.percent_after, 15.0);

        // Already past 80%: no new crossing; past 100%: exceeds.
        let b = budget_effect(&cfg, 85.0, 10.0).unwrap();
        assert!(!b.crosses_80_percent && !b.exceeds);
        let b = budget_effect(&cfg, 90.0, 20.0).unwrap();
        assert!(b.exceeds && !b.crosses_80_percent);
        assert_close!(b.percent_after, 110.0);
        // Exactly at the budget does not exceed it; from under 80% straight past 100% crosses.
        let b = budget_effect(&cfg, 60.0, 40.0).unwrap();
        assert!(!b.exceeds && b.crosses_80_percent);
        let b = budget_effect(&cfg, 0.0, 150.0).unwrap();
        assert!(b.exceeds && b.crosses_80_percent);

        let zero = BudgetConfig {
            monthly_usd: Some(0.0),
        };
        let b = budget_effect(&zero, 0.0, 1.0).unwrap();
        assert!(b.exceeds);
        assert!(b.percent_after.is_infinite());
    }

    // ---- quality score ----

    #[test]
    fn quality_score_table() {
        // first → last training loss: reduction % → score.
        let cases = [
            (2.0, 0.9, 5),  // 55%
            (2.0, 1.0, 4),  // exactly 50%: not > 50
            (2.0, 1.3, 4),  // 35%
            (2.0, 1.4, 3),  // exactly 30%
            (2.0, 1.6, 3),  // 20%
            (2.0, 1.8, 2),  // 10%
            (2.0, 1.9, 1),  // exactly 5%
            (2.0, 1.95, 1), // 2.5%
            (2.0, 2.5, 1),  // went up
        ];
        for (first, last, score) in cases {
            let q = quality(Some(first), Some(last), None);
            assert_eq!(q.quality_score, score, "{first} → {last}");
            assert_close!(
                q.loss_reduction_percent.unwrap(),
                (first - last) / first * 100.0
            );
            assert_eq!(q.initial_training_loss, Some(first));
            assert_eq!(q.final_training_loss, Some(last));
            assert_eq!(q.perplexity, None);
            // Good convergence needs more than a 5% drop: a 1/5 is never "good".
            let expected = if score >= 2 {
                Convergence::Good
            } else {
                Convergence::Unknown
            };
            assert_eq!(q.convergence, expected);
        }
    }

    #[test]
    fn overfit_costs_a_point_but_not_below_two() {
        // Validation loss more than 0.5 above the final training loss.
        let q = quality(Some(2.0), Some(0.8), Some(1.5)); // 60% → 5, overfit → 4
        assert_eq!((q.quality_score, q.convergence), (4, Convergence::Overfit));
        assert_close!(q.perplexity.unwrap(), 1.5f64.exp());
        let q = quality(Some(2.0), Some(1.6), Some(2.2)); // 20% → 3, overfit → 2
        assert_eq!((q.quality_score, q.convergence), (2, Convergence::Overfit));
        let q = quality(Some(2.0), Some(1.8), Some(2.4)); // 10% → 2 stays 2
        assert_eq!((q.quality_score, q.convergence), (2, Convergence::Overfit));
        let q = quality(Some(2.0), Some(1.95), Some(2.6)); // 2.5% → 1 stays 1
        assert_eq!((q.quality_score, q.convergence), (1, Convergence::Overfit));
        // Exactly 0.5 above is not overfitting.
        let q = quality(Some(2.0), Some(1.0), Some(1.5));
        assert_eq!((q.quality_score, q.convergence), (4, Convergence::Good));
    }

    #[test]
    fn the_explanation_says_what_the_score_rests_on() {
        let q = quality(Some(2.0), Some(1.76), None); // 12% → 2
        assert_eq!(q.quality_score, 2);
        assert_eq!(quality::explain(&q, None), "training loss down 12%");
        let q = quality(Some(2.0), Some(1.6), Some(2.2));
        assert_eq!(
            quality::explain(&q, None),
            "training loss down 20%; validation loss well above it: overfitting"
        );
        assert_eq!(
            quality::explain(&quality(Some(2.0), Some(2.5), None), None),
            "training loss up 25%"
        );
        assert_eq!(
            quality::explain(&quality(None, None, None), None),
            "no training loss to judge by"
        );
    }

    #[test]
    fn the_evaluation_is_part_of_the_run_and_right_within_twice_on_this_cpu() {
        use brightrun_engine::config::EvaluationConfig;
        use brightrun_engine::training::estimate::evaluation_seconds;
        let defaults = EvaluationConfig::default();
        // SmolLM2-135M on 2 cores (54 tokens/s of training), the README's 36 chats (4 held
        // out, 30 tokens each), defaults: 4 samples and 6 probes answered twice. Measured by
        // bench/evaluation.sh: 43.7 s.
        let tps = 2.0 * 0.5 * 7_241_732_096.0 / 134_515_008.0;
        let s = evaluation_seconds(&defaults, 120.0, 4, tps, true);
        assert!((43.7 / 2.0..=43.7 * 2.0).contains(&s), "{s}");
        // Off, or without probes and samples, it costs (almost) nothing.
        let none = EvaluationConfig {
            builtin_probes: false,
            ..defaults.clone()
        };
        assert!(evaluation_seconds(&none, 0.0, 0, tps, true) < 1e-9);
        // Mistral-7B on an A100 (1,800 tokens/s): 8 samples and the probes, about 22 s.
        let gpu = evaluation_seconds(&defaults, 10_000.0, 8, 1_800.0, false);
        assert!((15.0..40.0).contains(&gpu), "{gpu}");
        // Shorter answers asked for, shorter evaluation.
        let short = EvaluationConfig {
            max_new_tokens: 16,
            ..defaults
        };
        assert!(evaluation_seconds(&short, 120.0, 4, tps, true) < s / 4.0);
    }

    #[test]
    fn a_measured_base_makes_the_held_out_improvement_the_score() {
        use brightrun_engine::domain::Evaluation;
        let eval = |base, adapter| Evaluation {
            base_loss: Some(base),
            adapter_loss: Some(adapter),
            ..Default::default()
        };
        // Training loss down 60% (5/5 by the seed's rule), held out only 10% better: 2/5.
        let e = eval(2.0, 1.8);
        let q = quality::quality_with(Some(2.0), Some(0.8), Some(1.0), Some(&e));
        assert_eq!((q.quality_score, q.convergence), (2, Convergence::Good));
        assert_eq!(
            quality::explain(&q, Some(&e)),
            "held-out loss 10% below the base model's"
        );
        // Worse than the base on held-out data: 1/5, overfit.
        let e = eval(2.0, 2.4);
        let q = quality::quality_with(Some(2.0), Some(0.8), Some(2.4), Some(&e));
        assert_eq!((q.quality_score, q.convergence), (1, Convergence::Overfit));
        // 60% better held out, but validation well above training loss: 5 → 4, overfit.
        let e = eval(2.5, 1.0);
        let q = quality::quality_with(Some(2.0), Some(0.4), Some(1.0), Some(&e));
        assert_eq!((q.quality_score, q.convergence), (4, Convergence::Overfit));
        // No base loss: the training-loss rule, unchanged.
        let e = Evaluation {
            adapter_loss: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            quality::quality_with(Some(2.0), Some(0.9), None, Some(&e)),
            quality(Some(2.0), Some(0.9), None)
        );
    }

    #[test]
    fn no_metrics_scores_three_unknown() {
        let q = quality(None, None, None);
        assert_eq!((q.quality_score, q.convergence), (3, Convergence::Unknown));
        assert_eq!((q.loss_reduction_percent, q.perplexity), (None, None));
        // NaN (a diverged run) counts as missing; so does a first loss of 0.
        let q = quality(Some(f64::NAN), Some(1.0), None);
        assert_eq!((q.quality_score, q.convergence), (3, Convergence::Unknown));
        let q = quality(Some(0.0), Some(0.0), None);
        assert_eq!(q.quality_score, 3);
        // Validation loss alone still gives the perplexity.
        let q = quality(None, None, Some(2.0));
        assert_eq!(q.quality_score, 3);
        assert_close!(q.perplexity.unwrap(), 2.0f64.exp());
    }

    fn with_model(id: &str) -> Hyperparameters {
        let mut hp = preset("balanced");
        hp.base_model = id.into();
        hp
    }

    #[test]
    fn throughput_scales_with_the_models_training_flops() {
        // The seed's case (1000 pairs of 500 tokens, balanced: 750 steps of batch 4, one
        // A100-80GB at 1800 tokens/s for Mistral-7B, $3.50/h, 0.5 h overhead), three models.
        // Training FLOPs per token are 6 × parameters; throughput scales by their ratio to
        // Mistral-7B-v0.1's 7,241,732,096 parameters.
        let run = |id: &str| {
            Case::new(stats(1000, 0, 500_000), with_model(id), "A100-80GB", 1)
                .run()
                .unwrap()
        };
        // Mistral-7B: factor 1, the seed's figures unchanged ($3.0601851…).
        let m = run("mistralai/Mistral-7B-v0.1");
        assert_close!(m.throughput.model_factor, 1.0);
        assert_close!(
            m.training_details.estimated_throughput_tokens_per_sec,
            1800.0
        );
        assert_close!(
            m.estimated_cost,
            3.5 * (750.0 * 2000.0 / 1800.0 / 3600.0 + 0.5) + 0.5
        );
        assert_eq!(m.throughput.source, training::ThroughputSource::Catalog);
        assert_close!(m.throughput.training_flops_per_token, 6.0 * 7_241_732_096.0);
        // Llama-3.1-70B (70,553,706,496 parameters):
        //   factor       = 7,241,732,096 / 70,553,706,496 = 0.1026414…
        //   throughput   = 1800 × 0.1026414…               = 184.7545… tokens/s
        //   seconds/step = 500 × 4 / 184.7545…             = 10.82517… s
        //   training     = 750 × 10.82517… / 3600          = 2.255244… h
        //   cost         = 3.50 × (2.255244… + 0.5) + 0.50 = 10.14336… $
        let l = run("meta-llama/Llama-3.1-70B");
        assert_close!(
            l.throughput.model_factor,
            7_241_732_096.0 / 70_553_706_496.0
        );
        assert!((l.training_details.estimated_throughput_tokens_per_sec - 184.7545).abs() < 1e-3);
        assert!((l.training_details.training_hours - 2.255244).abs() < 1e-5);
        assert!(
            (l.estimated_cost - 10.14336).abs() < 1e-5,
            "{}",
            l.estimated_cost
        );
        // Qwen2.5-0.5B (494,032,768): factor 14.6584…, 26,385.13 tokens/s, 0.0157917 h of
        // training, $2.30527.
        let q = run("Qwen/Qwen2.5-0.5B");
        assert!((q.training_details.estimated_throughput_tokens_per_sec - 26_385.128).abs() < 1e-2);
        assert!(
            (q.estimated_cost - 2.305271).abs() < 1e-5,
            "{}",
            q.estimated_cost
        );
        assert!(q.estimated_cost < m.estimated_cost && m.estimated_cost < l.estimated_cost);
        assert!(
            l.throughput.note.contains("× 0.103 for 71B parameters"),
            "{}",
            l.throughput.note
        );
    }

    #[test]
    fn qlora_is_slower_by_the_stated_factor() {
        // Mistral-7B in 4 bits: 1800 / 1.4 = 1285.714… tokens/s; seconds/step 1.5555…;
        // training 750 × 1.5555… / 3600 = 0.3240740… h; cost 3.50 × 0.8240740… + 0.50
        // = 3.3842592… $.
        let mut hp = preset("balanced");
        hp.quantization = brightrun_engine::domain::Quantization::FourBit;
        let e = Case::new(stats(1000, 0, 500_000), hp, "A100-80GB", 1)
            .run()
            .unwrap();
        assert_eq!(training::estimate::QLORA_SLOWDOWN, 1.4);
        assert_close!(
            e.training_details.estimated_throughput_tokens_per_sec,
            1800.0 / 1.4
        );
        assert_close!(
            e.estimated_cost,
            3.5 * (750.0 * 2000.0 / (1800.0 / 1.4) / 3600.0 + 0.5) + 0.5
        );
        assert!((e.estimated_cost - 3.3842592).abs() < 1e-6);
    }

    #[test]
    fn calibrated_runs_replace_the_assumed_throughput() {
        // Three runs measured 1000, 1200 and 1400 tokens/s: the mean, 1200, is used.
        //   seconds/step = 500 × 4 / 1200 = 1.6666… s; training = 750 × 1.6666… / 3600
        //   = 0.3472222… h; cost = 3.50 × 0.8472222… + 0.50 = 3.4652777… $.
        let mut c = None;
        for tps in [1000.0, 1200.0, 1400.0] {
            c = training::Calibration::add(c, tps);
        }
        let mut case = Case::new(stats(1000, 0, 500_000), preset("balanced"), "A100-80GB", 1);
        case.calibration = c;
        let e = case.run().unwrap();
        assert_eq!(e.throughput.source, training::ThroughputSource::Calibrated);
        assert_eq!(e.throughput.calibration_runs, 3);
        assert_eq!(e.throughput.note, "calibrated from 3 runs");
        assert_close!(
            e.training_details.estimated_throughput_tokens_per_sec,
            1200.0
        );
        assert_close!(e.throughput.uncalibrated_tokens_per_sec, 1800.0);
        assert!((e.estimated_cost - 3.4652777).abs() < 1e-6);
    }

    /// An estimate on this machine's CPU (no CUDA GPU) with `cores` cores.
    fn on_cpu(cores: u32, st: &DatasetStatistics, hp: &Hyperparameters) -> training::Estimate {
        on_cpu_calibrated(cores, st, hp, None)
    }

    fn on_cpu_calibrated(
        cores: u32,
        st: &DatasetStatistics,
        hp: &Hyperparameters,
        calibration: Option<training::Calibration>,
    ) -> training::Estimate {
        let hw = brightrun_engine::hardware::LocalHardware {
            gpus: vec![],
            cpu_cores: cores,
            memory_gb: 8.0,
        };
        let training = TrainingConfig::default();
        let catalog = GpuCatalog::from_config(&training).unwrap();
        let catalog = catalog.clone().with_local(hw.spec(0.0, &catalog));
        training::estimate(&EstimateInput {
            statistics: st,
            hyperparameters: hp,
            gpu_type: "local",
            gpu_count: 1,
            catalog: &catalog,
            training: &training,
            parameters_billions: None,
            budget: &BudgetConfig::default(),
            spent_this_month: 0.0,
            calibration,
            evaluation: None,
        })
        .unwrap()
    }

    #[test]
    fn this_machine_is_priced_at_its_own_rate_without_the_cluster_overhead() {
        // The tiny model (115,648 parameters) on this machine's CPU (16 cores: 8 tokens/s
        // for Mistral-7B) at the default $0/h: factor 62,618.3…, 500,946.6 tokens/s; each of
        // the 5 steps (20 examples, batch 4) adds 0.04 s to its 400 tokens' 0.0008 s, and the run
        // 7 s + 20 s/B × 0.000115648 B to start and finish; the cost is the flat storage only.
        let hp = with_model("brightrun/tiny-random-llama");
        let st = stats(20, 0, 2_000);
        let e = on_cpu(16, &st, &hp);
        assert!(e.local);
        assert_eq!(e.throughput.source, training::ThroughputSource::Local);
        assert_close!(e.hourly_rate, 0.0);
        assert_close!(e.cost_breakdown.compute, 0.0);
        assert_close!(e.estimated_cost, 0.5);
        let tps = 8.0 * 7_241_732_096.0 / 115_648.0;
        assert_close!(e.training_details.estimated_throughput_tokens_per_sec, tps);
        assert_close!(e.training_details.seconds_per_step, 400.0 / tps + 0.04);
        assert_close!(
            e.training_details.overhead_hours,
            (7.0 + 20.0 * 115_648.0 / 1e9) / 3600.0
        );
        // A named catalog GPU keeps the seed's pricing and overhead.
        let training = TrainingConfig::default();
        let catalog = GpuCatalog::from_config(&training).unwrap();
        let a = training::estimate(&EstimateInput {
            gpu_type: "A100-80GB",
            calibration: None,
            statistics: &st,
            hyperparameters: &hp,
            gpu_count: 1,
            catalog: &catalog,
            training: &training,
            parameters_billions: None,
            budget: &BudgetConfig::default(),
            spent_this_month: 0.0,
            evaluation: None,
        })
        .unwrap();
        assert!(!a.local);
        assert_close!(a.hourly_rate, 3.5);
        assert_close!(
            a.training_details.overhead_hours,
            10.0 / 60.0 + 3.0 * 5.0 / 60.0 + 5.0 / 60.0
        );
    }

    /// The runs of BENCHMARKS.md's "CPU estimates" (2 cores, the real binary and trainer, from
    /// `jobs create` to the job's end): 40 short chats (36 train, 4 held out, 1,092 tokens as
    /// the validator counts them), batch 4 or 8, on each model; and what they took.
    const MEASURED_ON_2_CORES: &[(&str, u32, u32, f64)] = &[
        ("brightrun/tiny-random-llama", 8, 1, 7.3),
        ("brightrun/tiny-random-llama", 4, 5, 8.8),
        ("brightrun/smollm2-135m-instruct", 4, 1, 27.0),
        ("brightrun/smollm2-135m-instruct", 4, 4, 83.8),
    ];

    #[test]
    fn cpu_estimates_are_within_2x_of_the_measured_runs() {
        let st = DatasetStatistics {
            total_examples: 40,
            total_training_pairs: 36,
            total_validation_pairs: 4,
            total_tokens: 1092,
            tokens_p95: 33,
            tokens_max: 33,
            ..Default::default()
        };
        for &(model, batch, epochs, actual) in MEASURED_ON_2_CORES {
            let mut hp = with_model(model);
            hp.batch_size = batch;
            hp.epochs = epochs;
            let e = on_cpu(2, &st, &hp);
            let seconds = e.estimated_duration_hours * 3600.0;
            assert!(
                seconds >= actual / 2.0 && seconds <= actual * 2.0,
                "{model}, batch {batch}, {epochs} epochs: estimated {seconds:.1} s, ran {actual} s ({})",
                e.throughput.note
            );
            // Tighter than the promise on these very runs (the constants come from them).
            assert!(
                (seconds / actual - 1.0).abs() < 0.25,
                "{model}: {seconds:.1} s against {actual} s"
            );
        }
    }

    #[test]
    fn a_cpu_basis_names_the_cpu_and_its_fixed_costs_never_a_gpu() {
        let st = stats(36, 4, 1_092);
        let e = on_cpu(2, &st, &with_model("brightrun/smollm2-135m-instruct"));
        assert_eq!(
            e.throughput.note,
            "this machine's CPU (2 cores) 1.0/s for Mistral-7B × 53.8 for 135M parameters, plus 0.04 s per step and 9.7 s to start and finish"
        );
        let tiny = on_cpu(1, &st, &with_model("brightrun/tiny-random-llama"));
        assert!(
            tiny.throughput
                .note
                .starts_with("this machine's CPU (1 core) 0.5/s"),
            "{}",
            tiny.throughput.note
        );
        for e in [&e, &tiny] {
            assert!(!e.throughput.note.contains("GPU"), "{}", e.throughput.note);
            assert!(
                e.warnings.iter().all(|w| !w.contains("per GPU")),
                "{:?}",
                e.warnings
            );
        }
        // Out of memory on a CPU speaks of the machine's memory.
        let big = with_model("meta-llama/Llama-3.1-8B");
        let oom = on_cpu(2, &st, &big);
        let w = oom
            .warnings
            .iter()
            .find(|w| w.contains("run out of memory"))
            .expect("an 8B model does not fit in 8 GB");
        assert!(w.contains("GB of memory and this machine has 8 GB"), "{w}");
        // A calibrated CPU figure already holds the per-step cost: it is not added again.
        let tiny = with_model("brightrun/tiny-random-llama");
        let u = on_cpu(2, &st, &tiny);
        assert_close!(
            u.training_details.seconds_per_step - 0.04,
            27.3 * 4.0 / u.training_details.estimated_throughput_tokens_per_sec
        );
        let c = on_cpu_calibrated(2, &st, &tiny, training::Calibration::add(None, 1000.0));
        assert_eq!(c.throughput.note, "calibrated from 1 run");
        assert_close!(c.training_details.seconds_per_step, 27.3 * 4.0 / 1000.0);
    }
}
