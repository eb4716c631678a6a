//! Presets (built-in and from config) and the GPU catalog (built-in, overridden, extended).

// Inside `mod training` so that `cargo test -p brightrun-engine training` selects these.
mod training {
    use brightrun_engine::config::{Config, TrainingConfig};
    use brightrun_engine::domain::{PresetId, Quantization, Scheduler};
    use brightrun_engine::training::presets::{self, PresetError};
    use brightrun_engine::training::{GpuCatalog, GpuCatalogError};

    fn training(toml: &str) -> TrainingConfig {
        Config::parse(toml).expect("valid config").training
    }

    // ---- presets ----

    #[test]
    fn builtin_presets_have_the_seeds_values() {
        let cfg = TrainingConfig::default();
        let cases = [
            ("fast", PresetId::Fast, 1e-4, 8, 1, 8, 16, 0.05),
            ("balanced", PresetId::Balanced, 5e-5, 4, 3, 16, 32, 0.1),
            ("quality", PresetId::Quality, 3e-5, 2, 5, 32, 64, 0.1),
            ("custom", PresetId::Custom, 5e-5, 4, 3, 16, 32, 0.1),
        ];
        for (name, id, lr, batch, epochs, rank, alpha, dropout) in cases {
            let (got, hp) = presets::resolve(name, &cfg).unwrap();
            assert_eq!(got, id);
            assert_eq!(
                (
                    hp.learning_rate,
                    hp.batch_size,
                    hp.epochs,
                    hp.lora_rank,
                    hp.lora_alpha,
                    hp.lora_dropout
                ),
                (lr, batch, epochs, rank, alpha, dropout),
                "{name}"
            );
            assert_eq!(hp.target_modules, ["q_proj", "k_proj", "v_proj", "o_proj"]);
            assert_eq!(hp.warmup_ratio, 0.03);
            assert_eq!(hp.scheduler, Scheduler::Cosine);
            assert_eq!(hp.max_seq_length, 2048);
            assert_eq!(hp.seed, 42);
            assert!(hp.use_validation);
            assert_eq!(hp.quantization, Quantization::None);
            assert_eq!(hp.gradient_accumulation_steps, 1);
            assert_eq!(hp.base_model, "mistralai/Mistral-7B-v0.1");
        }
        assert_eq!(
            presets::resolve_default(&cfg).unwrap().0,
            PresetId::Balanced
        );
        assert_eq!(presets::resolve("FAST", &cfg).unwrap().0, PresetId::Fast);
    }

    #[test]
    fn base_model_comes_from_config() {
        let cfg = training("[training]\ndefault_base_model = \"Qwen/Qwen2.5-7B\"\n");
        assert_eq!(
            presets::resolve("quality", &cfg).unwrap().1.base_model,
            "Qwen/Qwen2.5-7B"
        );
    }

    #[test]
    fn user_preset_based_on_fast_with_one_override() {
        let cfg = training(
            r#"
[training.presets.fast-r16]
base = "fast"
description = "fast, bigger adapter"
lora_rank = 16
"#,
        );
        let (id, hp) = presets::resolve("fast-r16", &cfg).unwrap();
        assert_eq!(id, PresetId::User("fast-r16".into()));
        let (_, fast) = presets::resolve("fast", &cfg).unwrap();
        assert_eq!(hp.lora_rank, 16);
        assert_eq!(
            brightrun_engine::domain::Hyperparameters {
                lora_rank: fast.lora_rank,
                ..hp.clone()
            },
            fast,
            "everything else is fast's"
        );
        // Case-insensitive too.
        assert_eq!(presets::resolve("Fast-R16", &cfg).unwrap().1, hp);

        let list = presets::list(&cfg);
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["fast", "balanced", "quality", "custom", "fast-r16"]);
        let mine = &list[4];
        assert!(!mine.builtin);
        assert_eq!(mine.base.as_deref(), Some("fast"));
        assert_eq!(mine.description, "fast, bigger adapter");
        assert_eq!(mine.error, None);
        assert_eq!(mine.hyperparameters, hp);
    }

    #[test]
    fn user_preset_defaults_to_balanced_and_parses_strings() {
        let cfg = training(
            r#"
[training.presets.long]
epochs = 10
scheduler = "linear"
quantization = "4bit"
base_model = "meta-llama/Llama-3.1-8B"
target_modules = ["q_proj", "v_proj"]
warmup_steps = 50
"#,
        );
        let (_, hp) = presets::resolve("long", &cfg).unwrap();
        assert_eq!((hp.learning_rate, hp.batch_size, hp.epochs), (5e-5, 4, 10));
        assert_eq!(hp.scheduler, Scheduler::Linear);
        assert_eq!(hp.quantization, Quantization::FourBit);
        assert_eq!(hp.base_model, "meta-llama/Llama-3.1-8B");
        assert_eq!(hp.target_modules, ["q_proj", "v_proj"]);
        assert_eq!(hp.warmup_steps, Some(50));
    }

    #[test]
    fn invalid_user_preset_errors_naming_it() {
        let cfg = training("[training.presets.too-hot]\nbase = \"fast\"\nlearning_rate = 0.5\n");
        let e = presets::resolve("too-hot", &cfg).unwrap_err();
        assert!(matches!(&e, PresetError::Invalid { name, .. } if name == "too-hot"));
        assert_eq!(
            e.to_string(),
            "preset `too-hot`: learning_rate = 0.5 is outside 1e-5 to 1e-3"
        );
        // Listed, with the error, so the user sees why it cannot be picked.
        let listed = presets::list(&cfg)
            .into_iter()
            .find(|p| p.name == "too-hot")
            .unwrap();
        assert_eq!(listed.error.as_deref(), Some(e.to_string().as_str()));

        let cfg = training("[training.presets.odd]\nscheduler = \"exponential\"\n");
        let e = presets::resolve("odd", &cfg).unwrap_err().to_string();
        assert!(
            e.starts_with("preset `odd`: scheduler = \"exponential\" is not"),
            "{e}"
        );

        let cfg = training("[training.presets.mine]\nbase = \"turbo\"\n");
        let e = presets::resolve("mine", &cfg).unwrap_err().to_string();
        assert!(e.contains("preset `mine`: base `turbo`"), "{e}");

        let cfg = training("[training.presets.multi]\nbatch_size = 0\nepochs = 30\n");
        match presets::resolve("multi", &cfg).unwrap_err() {
            PresetError::Invalid { errors, .. } => assert_eq!(errors.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_preset_lists_known_names() {
        let cfg = training("[training.presets.mine]\nepochs = 2\n");
        let e = presets::resolve("turbo", &cfg).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown preset `turbo`; known presets: fast, balanced, quality, custom, mine"
        );
    }

    #[test]
    fn config_can_change_a_builtin_and_presets_based_on_it() {
        let cfg = training(
            r#"
[training.presets.balanced]
learning_rate = 1e-4

[training.presets.mine]
epochs = 1
"#,
        );
        let (id, hp) = presets::resolve("balanced", &cfg).unwrap();
        assert_eq!(id, PresetId::Balanced);
        assert_eq!(hp.learning_rate, 1e-4);
        assert_eq!(
            presets::resolve("mine", &cfg).unwrap().1.learning_rate,
            1e-4
        );
        assert_eq!(
            presets::list(&cfg).len(),
            5,
            "the override is not listed twice"
        );
    }

    // ---- GPU catalog ----

    #[test]
    fn builtin_catalog() {
        let c = GpuCatalog::builtin();
        let ids = c.ids();
        assert_eq!(
            ids,
            [
                "A100-80GB",
                "A100-40GB",
                "H100",
                "V100-32GB",
                "H200",
                "L40S",
                "A10G",
                "RTX-4090"
            ]
        );
        let seed = [
            ("A100-80GB", 3.50, 1800.0, 80.0),
            ("A100-40GB", 2.80, 1500.0, 40.0),
            ("H100", 4.20, 2200.0, 80.0),
            ("V100-32GB", 2.10, 1200.0, 32.0),
        ];
        for (id, price, tps, mem) in seed {
            let g = c.get(id).unwrap();
            assert_eq!(
                (g.price_per_hour, g.tokens_per_sec, g.memory_gb),
                (price, tps, mem),
                "{id}"
            );
        }
        assert!(!c.get("V100-32GB").unwrap().bf16);
        assert_eq!(c.get("L40S").unwrap().memory_gb, 48.0);
        assert_eq!(c.get("A10G").unwrap().memory_gb, 24.0);
        assert_eq!(c.get("RTX-4090").unwrap().memory_gb, 24.0);
        assert_eq!(c.get("H200").unwrap().memory_gb, 141.0);
        for g in c.all() {
            assert!(
                g.price_per_hour > 0.0 && g.tokens_per_sec > 0.0 && g.bf16 == (g.id != "V100-32GB")
            );
        }
    }

    #[test]
    fn gpu_ids_are_case_insensitive_and_unknown_ids_list_known_ones() {
        let c = GpuCatalog::from_config(&TrainingConfig::default()).unwrap();
        assert_eq!(c.get("a100-80gb").unwrap().id, "A100-80GB");
        assert_eq!(c.get("rtx-4090").unwrap().id, "RTX-4090");
        assert_eq!(c.get(" h100 ").unwrap().id, "H100");
        let e = c.get("TPU-v5").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown GPU type `TPU-v5`; known types: A100-80GB, A100-40GB, H100, V100-32GB, H200, L40S, A10G, RTX-4090"
        );
    }

    #[test]
    fn config_overrides_and_extends_the_catalog() {
        let cfg = training(
            r#"
[training.gpus.a100-80gb]
price_per_hour = 1.99

[training.gpus.MI300X]
name = "AMD Instinct MI300X"
price_per_hour = 3.99
tokens_per_sec = 2400.0
memory_gb = 192.0
"#,
        );
        let c = GpuCatalog::from_config(&cfg).unwrap();
        let a = c.get("A100-80GB").unwrap();
        assert_eq!(
            (a.price_per_hour, a.tokens_per_sec, a.memory_gb),
            (1.99, 1800.0, 80.0)
        );
        let m = c.get("mi300x").unwrap();
        assert_eq!(m.id, "MI300X");
        assert_eq!(m.name, "AMD Instinct MI300X");
        assert_eq!(
            (m.price_per_hour, m.tokens_per_sec, m.memory_gb, m.bf16),
            (3.99, 2400.0, 192.0, true)
        );
        assert_eq!(c.all().len(), 9);
        assert_eq!(c.ids().last().unwrap(), "MI300X");
    }

    #[test]
    fn incomplete_or_bad_gpu_entries_error_naming_them() {
        let cfg = training("[training.gpus.B200]\nprice_per_hour = 6.0\n");
        let e = GpuCatalog::from_config(&cfg).unwrap_err();
        assert_eq!(
            e,
            GpuCatalogError::Incomplete {
                id: "B200".into(),
                missing: vec!["tokens_per_sec".into(), "memory_gb".into()]
            }
        );
        assert!(e.to_string().contains("GPU `B200`"), "{e}");
        assert!(e.to_string().contains("tokens_per_sec, memory_gb"), "{e}");

        let cfg = training("[training.gpus.H100]\nprice_per_hour = -1.0\n");
        let e = GpuCatalog::from_config(&cfg).unwrap_err().to_string();
        assert_eq!(
            e,
            "GPU `H100`: price_per_hour = -1 must be a positive number"
        );

        let cfg = training(
            "[training.gpus.X1]\nprice_per_hour = 1.0\ntokens_per_sec = 1.0\nmemory_gb = 1.0\n[training.gpus.x1]\nprice_per_hour = 1.0\ntokens_per_sec = 1.0\nmemory_gb = 1.0\n",
        );
        assert!(matches!(
            GpuCatalog::from_config(&cfg),
            Err(GpuCatalogError::Duplicate { .. })
        ));
    }
}
