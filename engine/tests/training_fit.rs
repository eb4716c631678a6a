//! The memory-fit check for known cases, and the model size table.

// Inside `mod training` so that `cargo test -p brightrun-engine training` selects these.
mod training {
    use brightrun_engine::config::{Config, TrainingConfig};
    use brightrun_engine::domain::{Hyperparameters, Quantization};
    use brightrun_engine::training::fit::{self, FitVerdict};
    use brightrun_engine::training::models::{self, ModelSource};
    use brightrun_engine::training::{GpuCatalog, presets};

    fn hp(model: &str, batch: u32, seq: u32, q: Quantization) -> Hyperparameters {
        let (_, mut hp) = presets::resolve("balanced", &TrainingConfig::default()).unwrap();
        hp.base_model = model.into();
        hp.batch_size = batch;
        hp.max_seq_length = seq;
        hp.quantization = q;
        hp
    }

    fn check(model: &str, gpu: &str, batch: u32, seq: u32, q: Quantization) -> fit::Fit {
        let catalog = GpuCatalog::builtin();
        let m = models::lookup(model, &TrainingConfig::default()).expect("model in table");
        let hp = hp(model, batch, seq, q);
        let f = fit::check_fit(
            &m,
            &hp,
            seq,
            catalog.get(gpu).unwrap(),
            &catalog,
            fit::LossMode::Full,
        );
        eprintln!(
            "{model} {gpu} b{batch} s{seq} {q:?}: {:?} {:.2}/{:.0} GB {:?}",
            f.verdict, f.required_gb, f.available_gb, f.breakdown
        );
        f
    }

    #[test]
    fn llama_8b_16bit_does_not_fit_on_24gb() {
        for gpu in ["A10G", "RTX-4090"] {
            for batch in [4, 8] {
                let f = check(
                    "meta-llama/Llama-3.1-8B",
                    gpu,
                    batch,
                    2048,
                    Quantization::None,
                );
                assert_eq!(f.verdict, FitVerdict::WillNotFit, "{gpu} batch {batch}");
                assert!(f.required_gb > 24.0);
                assert_eq!(f.available_gb, 24.0);
                // The first suggestion is QLoRA; more GPUs of the same type are no help.
                assert!(
                    f.suggestions[0].contains("quantization=4bit"),
                    "{:?}",
                    f.suggestions
                );
                assert!(f.suggestions.iter().any(|s| s.contains("DDP")));
            }
            // At batch 4 QLoRA alone makes it fit; a larger GPU (cheapest first) also would.
            let f = check("meta-llama/Llama-3.1-8B", gpu, 4, 2048, Quantization::None);
            assert!(f.suggestions[0].contains("(fits"), "{:?}", f.suggestions);
            let larger = f
                .suggestions
                .iter()
                .find(|s| s.contains("more memory"))
                .unwrap();
            assert!(
                larger.starts_with("use a GPU with more memory: L40S"),
                "{larger}"
            );
            // At batch 8 the logits alone are ~20 GB: QLoRA is not enough by itself.
            let f = check("meta-llama/Llama-3.1-8B", gpu, 8, 2048, Quantization::None);
            assert!(
                f.suggestions[0].contains("still does not fit"),
                "{:?}",
                f.suggestions
            );
        }
        // Weights alone are 16 GB: even batch 1 leaves no headroom.
        let f = check(
            "meta-llama/Llama-3.1-8B-Instruct",
            "A10G",
            1,
            2048,
            Quantization::None,
        );
        assert_ne!(f.verdict, FitVerdict::Fits);
    }

    #[test]
    fn llama_8b_qlora_fits_on_24gb() {
        for gpu in ["A10G", "RTX-4090"] {
            for batch in 1..=4 {
                let f = check(
                    "meta-llama/Llama-3.1-8B",
                    gpu,
                    batch,
                    2048,
                    Quantization::FourBit,
                );
                assert!(f.verdict.fits(), "{gpu} batch {batch}: {f:?}");
            }
            for batch in 1..=2 {
                let f = check(
                    "meta-llama/Llama-3.1-8B",
                    gpu,
                    batch,
                    2048,
                    Quantization::FourBit,
                );
                assert_eq!(f.verdict, FitVerdict::Fits, "{gpu} batch {batch}");
                assert!(f.suggestions.is_empty());
            }
        }
    }

    #[test]
    fn seventy_b_in_16bit_does_not_fit_on_80gb_but_qlora_does() {
        for gpu in ["A100-80GB", "H100"] {
            let f = check("meta-llama/Llama-3.1-70B", gpu, 1, 2048, Quantization::None);
            assert_eq!(f.verdict, FitVerdict::WillNotFit);
            assert!(f.breakdown.weights_gb > 130.0);
            assert!(f.suggestions[0].contains("quantization=4bit"));
            let f = check(
                "meta-llama/Llama-3.1-70B",
                gpu,
                1,
                2048,
                Quantization::FourBit,
            );
            assert_eq!(f.verdict, FitVerdict::Fits);
        }
        // Not even the H200's 141 GB holds 141 GB of weights plus activations.
        let f = check(
            "meta-llama/Llama-3.1-70B",
            "H200",
            1,
            2048,
            Quantization::None,
        );
        assert_eq!(f.verdict, FitVerdict::WillNotFit);
    }

    #[test]
    fn mistral_7b_qlora_fits_on_a10g() {
        for batch in [1, 2, 4, 8] {
            let f = check(
                "mistralai/Mistral-7B-v0.1",
                "A10G",
                batch,
                2048,
                Quantization::FourBit,
            );
            assert_eq!(f.verdict, FitVerdict::Fits, "batch {batch}");
        }
        // The seed's default: Mistral-7B, balanced, one A100-80GB.
        let f = check(
            "mistralai/Mistral-7B-v0.1",
            "A100-80GB",
            4,
            2048,
            Quantization::None,
        );
        assert_eq!(f.verdict, FitVerdict::Fits);
    }

    #[test]
    fn tight_suggests_headroom() {
        let f = check(
            "meta-llama/Llama-3.1-8B",
            "A10G",
            1,
            2048,
            Quantization::None,
        );
        assert_eq!(f.verdict, FitVerdict::Tight);
        assert!(
            f.suggestions
                .iter()
                .any(|s| s.contains("to leave headroom")),
            "{:?}",
            f.suggestions
        );
    }

    #[test]
    fn smaller_batch_and_seq_suggestions_keep_effective_batch() {
        // Llama-3.1-8B QLoRA at batch 16: the logits alone need ~39 GB.
        let f = check(
            "meta-llama/Llama-3.1-8B",
            "A10G",
            16,
            2048,
            Quantization::FourBit,
        );
        assert_eq!(f.verdict, FitVerdict::WillNotFit);
        let batch = f
            .suggestions
            .iter()
            .find(|s| s.starts_with("lower batch_size"))
            .unwrap();
        assert!(batch.contains("effective batch of 16"), "{batch}");
        assert!(
            f.suggestions
                .iter()
                .any(|s| s.starts_with("lower max_seq_length"))
        );
        assert!(
            !f.suggestions.iter().any(|s| s.contains("QLoRA")),
            "already QLoRA"
        );
    }

    #[test]
    fn memory_breakdown_by_hand() {
        // Llama-3.1-8B, 16-bit, rank 16 on q,k,v,o, batch 1, seq 1024.
        let m = models::builtin("meta-llama/Llama-3.1-8B").unwrap();
        let hp = hp("meta-llama/Llama-3.1-8B", 1, 1024, Quantization::None);
        let b = fit::memory_required(&m, &hp, 1024, fit::LossMode::Full);
        let gb = (1u64 << 30) as f64;
        // LoRA: 16 × ((4096+4096) + 2×(4096+1024) + (4096+4096)) × 32 layers = 13,631,488.
        assert_eq!(b.lora_parameters, 13_631_488);
        assert!((b.adapter_gb - 13_631_488.0 * 16.0 / gb).abs() < 1e-9);
        assert!((b.weights_gb - 8_030_261_248.0 * 2.0 / gb).abs() < 1e-9);
        // Checkpoints 1024×4096×32×2 + layer 1024×(20×4096 + 4×1024 + 8×14336).
        let act =
            1024.0 * 4096.0 * 32.0 * 2.0 + 1024.0 * (20.0 * 4096.0 + 4.0 * 1024.0 + 8.0 * 14336.0);
        assert!((b.activations_gb - act / gb).abs() < 1e-9);
        assert!((b.logits_gb - 1024.0 * 128_256.0 * 10.0 / gb).abs() < 1e-9);
        let rest = b.weights_gb + b.adapter_gb + b.activations_gb + b.logits_gb;
        assert!((b.overhead_gb - (1.0 + 0.1 * rest)).abs() < 1e-9);

        // QLoRA keeps the 2 × 128256 × 4096 embedding/head parameters in 16 bits.
        let q = hp_q(&hp);
        let bq = fit::memory_required(&m, &q, 1024, fit::LossMode::Full);
        let emb = 2.0 * 128_256.0 * 4096.0;
        let expected = ((8_030_261_248.0 - emb) * 0.55 + emb * 2.0) / gb;
        assert!((bq.weights_gb - expected).abs() < 1e-9);
    }

    #[test]
    fn the_chunked_loss_keeps_one_chunk_of_logits() {
        // Llama-3 at batch 8 × 2048: the full fp32 logits alone are many GB; the trainer's
        // chunked loss holds 1024 tokens' worth, and the fit check counts what it holds.
        let m = models::builtin("meta-llama/Llama-3.1-8B").unwrap();
        let hp = hp("meta-llama/Llama-3.1-8B", 8, 2048, Quantization::FourBit);
        let gb = (1u64 << 30) as f64;
        let full = fit::memory_required(&m, &hp, 2048, fit::LossMode::Full);
        let chunked = fit::memory_required(&m, &hp, 2048, fit::LossMode::Chunked);
        assert!((full.logits_gb - 8.0 * 2048.0 * 128_256.0 * 10.0 / gb).abs() < 1e-9);
        assert!((chunked.logits_gb - 1024.0 * 128_256.0 * 10.0 / gb).abs() < 1e-9);
        assert_eq!(chunked.weights_gb, full.weights_gb);
        assert_eq!(chunked.activations_gb, full.activations_gb);
        // On a 24 GB card that is the difference between not fitting and fitting.
        let catalog = GpuCatalog::builtin();
        let a10g = catalog.get("A10G").unwrap();
        let f_full = fit::check_fit(&m, &hp, 2048, a10g, &catalog, fit::LossMode::Full);
        let f_chunked = fit::check_fit(&m, &hp, 2048, a10g, &catalog, fit::LossMode::Chunked);
        assert_eq!(f_full.verdict, FitVerdict::WillNotFit, "{f_full:?}");
        assert!(f_chunked.verdict.fits(), "{f_chunked:?}");
    }

    fn hp_q(hp: &Hyperparameters) -> Hyperparameters {
        Hyperparameters {
            quantization: Quantization::FourBit,
            ..hp.clone()
        }
    }

    #[test]
    fn seq_len_follows_the_dataset_when_shorter() {
        let hp = hp("mistralai/Mistral-7B-v0.1", 4, 2048, Quantization::None);
        let stats = brightrun_engine::domain::DatasetStatistics {
            tokens_max: 700,
            ..Default::default()
        };
        assert_eq!(fit::effective_seq_len(&hp, Some(&stats)), 700);
        assert_eq!(fit::effective_seq_len(&hp, None), 2048);
        let long = brightrun_engine::domain::DatasetStatistics {
            tokens_max: 9000,
            ..Default::default()
        };
        assert_eq!(fit::effective_seq_len(&hp, Some(&long)), 2048);
    }

    // ---- model sizes ----

    #[test]
    fn every_required_family_is_in_the_table() {
        let cfg = TrainingConfig::default();
        let ids = [
            "meta-llama/Llama-3.2-1B",
            "meta-llama/Llama-3.2-1B-Instruct",
            "meta-llama/Llama-3.2-3B-Instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Meta-Llama-3.1-8B",
            "meta-llama/Llama-3.1-70B-Instruct",
            "meta-llama/Llama-3.3-70B-Instruct",
            "mistralai/Mistral-7B-v0.1",
            "mistralai/Mistral-7B-Instruct-v0.2",
            "mistralai/Mistral-7B-Instruct-v0.3",
            "Qwen/Qwen2.5-0.5B",
            "Qwen/Qwen2.5-1.5B-Instruct",
            "Qwen/Qwen2.5-3B",
            "Qwen/Qwen2.5-7B-Instruct",
            "Qwen/Qwen2.5-14B",
            "Qwen/Qwen2.5-32B-Instruct",
            "Qwen/Qwen2.5-72B",
            "google/gemma-2-2b",
            "google/gemma-2-9b-it",
            "google/gemma-2-27b",
            "google/gemma-3-1b-it",
            "google/gemma-3-4b-pt",
            "google/gemma-3-12b-it",
            "google/gemma-3-27b-it",
            "microsoft/Phi-3-mini-4k-instruct",
            "microsoft/Phi-3-small-8k-instruct",
            "microsoft/Phi-3-medium-128k-instruct",
            "microsoft/phi-4",
            "brightrun/tiny-random-llama",
        ];
        for id in ids {
            let m = models::lookup(id, &cfg).unwrap_or_else(|| panic!("{id} not found"));
            assert_eq!(m.source, ModelSource::Builtin);
            assert!(!m.shape_estimated);
        }
    }

    #[test]
    fn ids_match_case_insensitively_and_ignore_instruct_suffixes() {
        let cfg = TrainingConfig::default();
        let base = models::lookup("meta-llama/Llama-3.1-8B", &cfg).unwrap();
        for id in [
            "META-LLAMA/LLAMA-3.1-8B",
            "meta-llama/llama-3.1-8b-instruct",
            "unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit",
            "/srv/models/Llama-3.1-8B-Instruct",
        ] {
            assert_eq!(
                models::lookup(id, &cfg).unwrap().parameters,
                base.parameters,
                "{id}"
            );
        }
        assert_eq!(
            models::lookup("google/gemma-2-9b-it", &cfg).unwrap().id,
            "google/gemma-2-9b"
        );
        let tiny = models::lookup("brightrun/tiny-random-llama", &cfg).unwrap();
        assert_eq!((tiny.hidden_size, tiny.num_layers), (64, 2));
        assert!(tiny.parameters < 200_000);
    }

    #[test]
    fn unknown_models_are_asked_for_not_guessed() {
        let cfg = TrainingConfig::default();
        assert!(models::lookup("acme/mystery-13b", &cfg).is_none());
        let err = models::resolve("acme/mystery-13b", &cfg, None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("acme/mystery-13b"), "{text}");
        assert!(text.contains("--set parameters_billions="), "{text}");
        assert!(text.contains("[training.models."), "{text}");

        let m = models::resolve("acme/mystery-13b", &cfg, Some(13.0)).unwrap();
        assert_eq!(m.parameters, 13_000_000_000);
        assert_eq!(m.source, ModelSource::Override);
        assert!(m.shape_estimated);
        // An explicit size also wins over the table.
        let m = models::resolve("mistralai/Mistral-7B-v0.1", &cfg, Some(7.5)).unwrap();
        assert_eq!(m.parameters, 7_500_000_000);
        assert!(!m.shape_estimated);
    }

    #[test]
    fn config_models_extend_and_override_the_table() {
        let cfg = Config::parse(
            r#"
[training.models."acme/mystery-13b"]
parameters_billions = 13.0
hidden_size = 5120
num_layers = 40

[training.models."acme/only-size"]
parameters_billions = 2.0

[training.models."Qwen/Qwen2.5-7B"]
parameters_billions = 7.0
"#,
        )
        .unwrap()
        .training;
        let m = models::lookup("ACME/Mystery-13B", &cfg).unwrap();
        assert_eq!(
            (m.parameters, m.hidden_size, m.num_layers),
            (13_000_000_000, 5120, 40)
        );
        assert_eq!(m.source, ModelSource::Config);
        let m = models::lookup("acme/only-size", &cfg).unwrap();
        assert!(m.shape_estimated);
        let m = models::lookup("Qwen/Qwen2.5-7B-Instruct", &cfg).unwrap();
        assert_eq!(m.parameters, 7_000_000_000);
        assert_eq!(m.hidden_size, 3584, "shape kept from the table");
    }

    #[test]
    fn parameters_billions_parses_suffixes() {
        assert_eq!(models::parse_parameters_billions("7").unwrap(), 7.0);
        assert_eq!(models::parse_parameters_billions("0.5B").unwrap(), 0.5);
        assert_eq!(models::parse_parameters_billions("500m").unwrap(), 0.5);
        let e = models::parse_parameters_billions("0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("parameters_billions = 0 is outside"), "{e}");
        assert!(models::parse_parameters_billions("seven").is_err());
    }
}
