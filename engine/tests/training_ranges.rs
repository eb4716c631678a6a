//! Every hyperparameter's range: a value below or above it is reported with the field, the
//! value and the range; `--set key=value` parses per type and leaves the hyperparameters
//! unchanged on error.

// Inside `mod training` so that `cargo test -p brightrun-engine training` selects these.
mod training {
    use brightrun_engine::config::TrainingConfig;
    use brightrun_engine::domain::{
        DpoLoss, Hyperparameters, MethodName, Quantization, Scheduler, TrainingMethod,
    };
    use brightrun_engine::training::presets;
    use brightrun_engine::training::ranges::{self, FieldKind, RangeError, SetError};

    fn balanced() -> Hyperparameters {
        presets::resolve("balanced", &TrainingConfig::default())
            .unwrap()
            .1
    }

    /// Applies `change` to valid hyperparameters and expects exactly one error, for `field`,
    /// showing `value` and `range`.
    fn expect_error(
        change: impl FnOnce(&mut Hyperparameters),
        field: &str,
        value: &str,
        range: &str,
    ) {
        let mut hp = balanced();
        change(&mut hp);
        let errors = ranges::check(&hp).expect_err(field);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let e = &errors[0];
        assert_eq!(
            (e.field.as_str(), e.value.as_str(), e.range.as_str()),
            (field, value, range),
            "{e}"
        );
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{field} = {value} is ")),
            "{text}"
        );
        // People read the range as "a to b", never Rust's `a..=b`.
        assert!(text.contains(&ranges::readable_range(range)), "{text}");
        assert!(!text.contains("..="), "{text}");
    }

    #[test]
    fn defaults_are_in_range() {
        assert_eq!(ranges::check(&balanced()), Ok(()));
    }

    #[test]
    fn the_seeds_example_message() {
        let mut hp = balanced();
        hp.learning_rate = 0.5;
        let errors = ranges::check(&hp).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "learning_rate = 0.5 is outside 1e-5 to 1e-3"
        );
    }

    #[test]
    fn learning_rate_range() {
        expect_error(
            |h| h.learning_rate = 1e-6,
            "learning_rate",
            "1e-6",
            "1e-5..=1e-3",
        );
        expect_error(
            |h| h.learning_rate = 2e-3,
            "learning_rate",
            "2e-3",
            "1e-5..=1e-3",
        );
        expect_error(
            |h| h.learning_rate = f64::NAN,
            "learning_rate",
            "NaN",
            "1e-5..=1e-3",
        );
        for ok in [1e-5, 1e-3, 2e-4] {
            let mut hp = balanced();
            hp.learning_rate = ok;
            assert!(ranges::check(&hp).is_ok(), "{ok}");
        }
    }

    #[test]
    fn batch_size_range() {
        expect_error(|h| h.batch_size = 0, "batch_size", "0", "1..=64");
        expect_error(|h| h.batch_size = 65, "batch_size", "65", "1..=64");
    }

    #[test]
    fn gradient_accumulation_range() {
        let f = "gradient_accumulation_steps";
        expect_error(|h| h.gradient_accumulation_steps = 0, f, "0", "1..=128");
        expect_error(|h| h.gradient_accumulation_steps = 129, f, "129", "1..=128");
    }

    #[test]
    fn epochs_range() {
        expect_error(|h| h.epochs = 0, "epochs", "0", "1..=20");
        expect_error(|h| h.epochs = 21, "epochs", "21", "1..=20");
    }

    #[test]
    fn lora_rank_range() {
        expect_error(|h| h.lora_rank = 3, "lora_rank", "3", "4..=128");
        expect_error(|h| h.lora_rank = 129, "lora_rank", "129", "4..=128");
    }

    #[test]
    fn lora_alpha_range() {
        expect_error(|h| h.lora_alpha = 0, "lora_alpha", "0", "1..=512");
        expect_error(|h| h.lora_alpha = 513, "lora_alpha", "513", "1..=512");
    }

    #[test]
    fn lora_dropout_range() {
        expect_error(|h| h.lora_dropout = -0.1, "lora_dropout", "-0.1", "0..=0.5");
        expect_error(|h| h.lora_dropout = 0.6, "lora_dropout", "0.6", "0..=0.5");
    }

    #[test]
    fn warmup_ratio_range() {
        expect_error(
            |h| h.warmup_ratio = -0.01,
            "warmup_ratio",
            "-0.01",
            "0..=0.5",
        );
        expect_error(|h| h.warmup_ratio = 0.75, "warmup_ratio", "0.75", "0..=0.5");
    }

    #[test]
    fn warmup_steps_range() {
        // u32: nothing below 0; `None` is allowed.
        expect_error(
            |h| h.warmup_steps = Some(10_001),
            "warmup_steps",
            "10001",
            "0..=10000",
        );
        let mut hp = balanced();
        hp.warmup_steps = Some(0);
        assert!(ranges::check(&hp).is_ok());
    }

    #[test]
    fn weight_decay_range() {
        expect_error(|h| h.weight_decay = -0.5, "weight_decay", "-0.5", "0..=1");
        expect_error(|h| h.weight_decay = 1.5, "weight_decay", "1.5", "0..=1");
    }

    #[test]
    fn max_seq_length_range() {
        expect_error(
            |h| h.max_seq_length = 127,
            "max_seq_length",
            "127",
            "128..=32768",
        );
        expect_error(
            |h| h.max_seq_length = 32_769,
            "max_seq_length",
            "32769",
            "128..=32768",
        );
    }

    #[test]
    fn gpu_count_range() {
        for (n, ok) in [(0, false), (1, true), (8, true), (9, false)] {
            let r = ranges::check_gpu_count(n);
            assert_eq!(r.is_ok(), ok, "{n}");
            if let Err(e) = r {
                assert_eq!(e.to_string(), format!("gpu_count = {n} is outside 1 to 8"));
            }
        }
    }

    #[test]
    fn target_modules_shape() {
        let mut hp = balanced();
        hp.target_modules.clear();
        let e = &ranges::check(&hp).unwrap_err()[0];
        assert_eq!(e.field, "target_modules");
        assert!(
            e.to_string()
                .starts_with("target_modules = \"\" is not a non-empty"),
            "{e}"
        );

        hp.target_modules = vec!["q_proj".into(), "q proj".into()];
        let e = &ranges::check(&hp).unwrap_err()[0];
        assert!(e.to_string().contains("`q proj` is not one"), "{e}");

        hp.target_modules = vec!["q_proj".into(), "q_proj".into()];
        let e = &ranges::check(&hp).unwrap_err()[0];
        assert!(e.to_string().contains("appears twice"), "{e}");

        hp.target_modules = vec!["all-linear".into()];
        assert!(ranges::check(&hp).is_ok());
        hp.target_modules = vec![
            "qkv_proj".into(),
            "gate_up_proj".into(),
            "model.layers.0.mlp".into(),
        ];
        assert!(ranges::check(&hp).is_ok());
    }

    #[test]
    fn base_model_shape() {
        for bad in ["", "mistral", "a/b/c", "org/", "has space/x", "org/-x"] {
            let mut hp = balanced();
            hp.base_model = bad.into();
            let e = &ranges::check(&hp).unwrap_err()[0];
            assert_eq!(e.field, "base_model");
            assert_eq!(
                e.to_string(),
                format!("base_model = {bad:?} is not an org/name Hugging Face id or a local path")
            );
        }
        for ok in [
            "brightrun/tiny-random-llama",
            "meta-llama/Llama-3.1-8B-Instruct",
            "/srv/models/llama",
            "./models/x",
        ] {
            let mut hp = balanced();
            hp.base_model = ok.into();
            assert!(ranges::check(&hp).is_ok(), "{ok}");
        }
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let mut hp = balanced();
        hp.learning_rate = 1.0;
        hp.batch_size = 0;
        hp.epochs = 99;
        let errors = ranges::check(&hp).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["learning_rate", "batch_size", "epochs"]);
    }

    // ---- --set ----

    #[test]
    fn set_parses_each_type() {
        let mut hp = balanced();
        ranges::set(&mut hp, "learning_rate", "1e-4").unwrap();
        ranges::set(&mut hp, "batch_size", "8").unwrap();
        ranges::set(&mut hp, "gradient_accumulation_steps", " 4 ").unwrap();
        ranges::set(&mut hp, "epochs", "2").unwrap();
        ranges::set(&mut hp, "lora_rank", "64").unwrap();
        ranges::set(&mut hp, "lora_alpha", "128").unwrap();
        ranges::set(&mut hp, "lora_dropout", "0.05").unwrap();
        ranges::set(&mut hp, "target_modules", "q_proj, v_proj,,gate_proj").unwrap();
        ranges::set(&mut hp, "warmup_ratio", "0.1").unwrap();
        ranges::set(&mut hp, "warmup_steps", "100").unwrap();
        ranges::set(&mut hp, "weight_decay", "0.01").unwrap();
        ranges::set(&mut hp, "scheduler", "Constant-With-Warmup").unwrap();
        ranges::set(&mut hp, "max_seq_length", "4096").unwrap();
        ranges::set(&mut hp, "seed", "1_234").unwrap();
        ranges::set(&mut hp, "use_validation", "no").unwrap();
        ranges::set(&mut hp, "quantization", "4bit").unwrap();
        ranges::set(&mut hp, "base_model", "Qwen/Qwen2.5-7B-Instruct").unwrap();
        assert_eq!(hp.learning_rate, 1e-4);
        assert_eq!(hp.batch_size, 8);
        assert_eq!(hp.gradient_accumulation_steps, 4);
        assert_eq!(hp.epochs, 2);
        assert_eq!((hp.lora_rank, hp.lora_alpha), (64, 128));
        assert_eq!(hp.lora_dropout, 0.05);
        assert_eq!(hp.target_modules, ["q_proj", "v_proj", "gate_proj"]);
        assert_eq!(hp.warmup_ratio, 0.1);
        assert_eq!(hp.warmup_steps, Some(100));
        assert_eq!(hp.weight_decay, 0.01);
        assert_eq!(hp.scheduler, Scheduler::ConstantWithWarmup);
        assert_eq!(hp.max_seq_length, 4096);
        assert_eq!(hp.seed, 1234);
        assert!(!hp.use_validation);
        assert_eq!(hp.quantization, Quantization::FourBit);
        assert_eq!(hp.base_model, "Qwen/Qwen2.5-7B-Instruct");

        ranges::set(&mut hp, "warmup_steps", "none").unwrap();
        assert_eq!(hp.warmup_steps, None);
        ranges::set(&mut hp, "quantization", "none").unwrap();
        assert_eq!(hp.quantization, Quantization::None);
        for (text, value) in [
            ("true", true),
            ("ON", true),
            ("1", true),
            ("off", false),
            ("0", false),
        ] {
            ranges::set(&mut hp, "use_validation", text).unwrap();
            assert_eq!(hp.use_validation, value, "{text}");
        }
        for s in Scheduler::ALL {
            ranges::set(&mut hp, "scheduler", s.as_str()).unwrap();
            assert_eq!(hp.scheduler, s);
        }
    }

    #[test]
    fn set_round_trips_through_get() {
        // Every field of every method: a method's own fields read back only under it.
        for method in MethodName::ALL {
            let mut hp = balanced();
            hp.method = method.with_defaults();
            for f in ranges::FIELDS {
                let applies = ranges::applies(f.name, method);
                let Some(value) = ranges::get(&hp, f.name) else {
                    assert!(!applies, "{method:?}: no value for {}", f.name);
                    continue;
                };
                assert!(applies, "{method:?}: {} has a value", f.name);
                let mut copy = hp.clone();
                ranges::set(&mut copy, f.name, &value)
                    .unwrap_or_else(|e| panic!("{}: {e}", f.name));
                assert_eq!(copy, hp, "{} = {value}", f.name);
            }
        }
    }

    #[test]
    fn a_method_brings_its_defaults_and_owns_its_fields() {
        let mut hp = balanced();
        assert_eq!(hp.method, TrainingMethod::Sft);
        ranges::set(&mut hp, "method", "DPO").unwrap();
        assert_eq!(
            hp.method,
            TrainingMethod::Dpo {
                beta: 0.1,
                loss_type: DpoLoss::Sigmoid
            }
        );
        ranges::set(&mut hp, "beta", "0.25").unwrap();
        ranges::set(&mut hp, "loss_type", "ipo").unwrap();
        // Choosing the same method again keeps its values; another starts from its defaults.
        ranges::set(&mut hp, "method", "dpo").unwrap();
        assert_eq!(
            hp.method,
            TrainingMethod::Dpo {
                beta: 0.25,
                loss_type: DpoLoss::Ipo
            }
        );
        let before = hp.clone();
        let e = ranges::set(&mut hp, "gamma", "1").unwrap_err();
        assert!(matches!(e, SetError::NotForMethod { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "`gamma` is a hyperparameter of simpo; this run's method is dpo (set method=simpo first)"
        );
        assert_eq!(hp, before, "a refused set changes nothing");
        let e = ranges::set(&mut hp, "beta", "2").unwrap_err();
        assert_eq!(e.to_string(), "beta = 2 is outside 0.01 to 1");
        // SimPO's beta scales a per-token average: a larger range.
        ranges::set(&mut hp, "method", "simpo").unwrap();
        ranges::set(&mut hp, "beta", "2.5").unwrap();
        assert_eq!(ranges::get(&hp, "gamma").as_deref(), Some("1"));
        assert_eq!(ranges::get(&hp, "loss_type"), None);
        let e = ranges::set(&mut hp, "desirable_weight", "2").unwrap_err();
        assert!(e.to_string().contains("hyperparameter of kto"), "{e}");
        assert!(ranges::set(&mut hp, "method", "rlhf").is_err());
        ranges::set(&mut hp, "method", "sft").unwrap();
        assert_eq!(hp.method, TrainingMethod::Sft);
        assert!(ranges::check(&hp).is_ok());
    }

    #[test]
    fn set_rejects_out_of_range_and_leaves_hp_unchanged() {
        let mut hp = balanced();
        let before = hp.clone();
        let e = ranges::set(&mut hp, "learning_rate", "0.5").unwrap_err();
        assert_eq!(
            e,
            SetError::Range(RangeError {
                field: "learning_rate".into(),
                value: "0.5".into(),
                range: "1e-5..=1e-3".into()
            })
        );
        assert_eq!(e.to_string(), "learning_rate = 0.5 is outside 1e-5 to 1e-3");
        assert!(ranges::set(&mut hp, "epochs", "50").is_err());
        assert!(ranges::set(&mut hp, "target_modules", " , ").is_err());
        assert_eq!(hp, before);
    }

    #[test]
    fn set_reports_parse_errors_with_what_was_expected() {
        let mut hp = balanced();
        let cases = [
            ("batch_size", "four", "a whole number"),
            ("batch_size", "-1", "a whole number"),
            ("learning_rate", "fast", "a number"),
            ("learning_rate", "inf", "a number"),
            ("use_validation", "maybe", "true or false"),
            ("quantization", "8bit", "none or 4bit"),
            (
                "scheduler",
                "exponential",
                "linear or cosine or constant or constant_with_warmup",
            ),
        ];
        for (key, value, expected) in cases {
            let e = ranges::set(&mut hp, key, value).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, SetError::Parse { .. }), "{key}: {e:?}");
            assert!(
                text.starts_with(&format!("{key} = {value:?} is not")),
                "{text}"
            );
            assert!(text.contains(expected), "{text}");
        }
    }

    #[test]
    fn unknown_keys_list_the_known_ones() {
        let mut hp = balanced();
        let e = ranges::set(&mut hp, "learningrate", "1e-4").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(
                "unknown setting `learningrate`; known settings: method, beta, loss_type, lambda, gamma, desirable_weight, undesirable_weight, base_model, learning_rate,"
            ),
            "{text}"
        );
        for f in ranges::FIELDS {
            assert!(text.contains(f.name), "{text}");
        }
        assert!(matches!(
            ranges::set(&mut hp, "parameters_billions", "7"),
            Err(SetError::NotAHyperparameter(_))
        ));
    }

    #[test]
    fn split_assignment() {
        assert_eq!(ranges::split_assignment("lr=1e-4").unwrap(), ("lr", "1e-4"));
        assert_eq!(
            ranges::split_assignment("target_modules=a=b").unwrap(),
            ("target_modules", "a=b")
        );
        assert!(matches!(
            ranges::split_assignment("epochs"),
            Err(SetError::Syntax(_))
        ));
        assert!(matches!(
            ranges::split_assignment("=3"),
            Err(SetError::Syntax(_))
        ));
    }

    #[test]
    fn field_table_describes_every_field() {
        let names: Vec<&str> = ranges::FIELDS.iter().map(|f| f.name).collect();
        let json = serde_json::to_value(balanced()).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // The method's own fields are inside `method` in JSON (every method's, once each).
        let mut sorted: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| {
                MethodName::ALL
                    .iter()
                    .all(|m| !ranges::method_fields(*m).contains(n))
            })
            .collect();
        sorted.sort_unstable();
        keys.sort_unstable();
        assert_eq!(sorted, keys, "FIELDS and Hyperparameters agree");
        let mut own: Vec<&str> = MethodName::ALL
            .iter()
            .flat_map(|m| {
                let json = serde_json::to_value(m.with_defaults()).unwrap();
                json.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "name")
                    .map(|k| ranges::field(k).unwrap().name)
                    .collect::<Vec<_>>()
            })
            .collect();
        own.sort_unstable();
        own.dedup();
        assert_eq!(own.len(), 6, "{own:?}");
        let q = ranges::field("quantization").unwrap();
        assert_eq!(q.kind, FieldKind::Choice(&["none", "4bit"]));
        assert_eq!(ranges::field("learning_rate").unwrap().range, "1e-5..=1e-3");
    }
}
