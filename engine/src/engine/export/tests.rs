use super::*;

fn adapter() -> ModelArtifact {
    crate::store::fixture::samples().artifacts[0].clone()
}

fn request(format: ExportFormat) -> ExportRequest {
    ExportRequest {
        model: adapter().id,
        format,
        dtype: None,
        quantize: None,
        ollama: false,
        name: None,
        system_prompt: None,
        backend: None,
        gpu_type: None,
        dry_run: false,
    }
}

#[test]
fn an_export_defaults_to_f16_and_a_name_from_the_model() {
    let t = export_task(&request(ExportFormat::Gguf), &adapter()).unwrap();
    assert_eq!(t.dtype, ExportDtype::F16);
    assert!(valid_export_name(&t.name), "{}", t.name);
    assert!(t.name.ends_with("-gguf"), "{}", t.name);
}

#[test]
fn quantization_and_ollama_need_a_gguf() {
    let mut r = request(ExportFormat::Merged);
    r.quantize = Some("q4_k_m".into());
    let e = export_task(&r, &adapter()).unwrap_err().to_string();
    assert!(e.contains("--format gguf"), "{e}");
    let mut r = request(ExportFormat::GgufLora);
    r.ollama = true;
    let e = export_task(&r, &adapter()).unwrap_err().to_string();
    assert!(e.contains("--ollama"), "{e}");
}

#[test]
fn an_unknown_quantization_is_refused_with_the_known_ones() {
    let mut r = request(ExportFormat::Gguf);
    r.quantize = Some("Q9_Z".into());
    let e = export_task(&r, &adapter()).unwrap_err().to_string();
    assert!(e.contains("q9_z") && e.contains("q4_k_m"), "{e}");
    r.quantize = Some("Q4_K_M".into());
    let t = export_task(&r, &adapter()).unwrap();
    assert_eq!(t.quantize.as_deref(), Some("q4_k_m"));
}

#[test]
fn an_export_of_an_export_is_refused() {
    let mut m = adapter();
    m.kind = ModelKind::Gguf;
    let e = export_task(&request(ExportFormat::Gguf), &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gguf export") && e.contains("adapter"), "{e}");
}

#[test]
fn names_and_system_prompts_are_checked() {
    let mut r = request(ExportFormat::Gguf);
    r.name = Some("bad name!".into());
    assert!(export_task(&r, &adapter()).is_err());
    r.name = Some("zubrowka-v2".into());
    r.system_prompt = Some("Be brief.".into());
    let e = export_task(&r, &adapter()).unwrap_err().to_string();
    assert!(e.contains("--ollama"), "{e}");
    r.ollama = true;
    let t = export_task(&r, &adapter()).unwrap();
    assert_eq!(t.system_prompt.as_deref(), Some("Be brief."));
    r.system_prompt = Some("a \"\"\" b".into());
    assert!(export_task(&r, &adapter()).is_err());
}

#[test]
fn a_default_name_is_always_valid() {
    let mut m = adapter();
    for name in ["", "..x", "ünïcode name/with slashes", &"x".repeat(200)] {
        m.name = name.into();
        let n = default_name(&m, ExportFormat::GgufLora);
        assert!(valid_export_name(&n), "{name:?} → {n:?}");
    }
}

#[test]
fn the_names_a_remote_export_may_write_cover_its_shards() {
    let task = export_task(&request(ExportFormat::Merged), &adapter()).unwrap();
    let names = export_file_names(&task, 3);
    for n in [
        "export.json",
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00003-of-00003.safetensors",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing");
    }
    assert!(
        !names
            .iter()
            .any(|x| x == "model-00001-of-00004.safetensors")
    );
    let mut r = request(ExportFormat::Gguf);
    r.ollama = true;
    let names = export_file_names(&export_task(&r, &adapter()).unwrap(), 1);
    assert_eq!(names, ["export.json", "model.gguf", "Modelfile"]);
}

#[test]
fn shards_grow_with_the_model_and_stop_at_the_limit() {
    assert_eq!(shards_for(0.5e9), 2);
    assert!(shards_for(140e9) > 40);
    assert_eq!(shards_for(1e15), MAX_SHARDS);
}

#[test]
fn the_check_is_read_leniently_and_cleaned() {
    let c = parse_check(
        br#"{"format":"gguf","passed":true,"checked":"greedy","agreement":1.0,
             "template_matches":true,"prompts":[{"of":8,"passed":true},{"of":8,"passed":true}],
             "seconds":{"merge":1.5,"convert":2.5},"ollama":{"command":"ollama create x -f Modelfile\u001b[2J"},
             "future_field":[1,2]}"#,
    )
    .unwrap();
    assert!(c.passed);
    assert_eq!(c.prompts, 2);
    assert_eq!(c.tokens, Some(8));
    assert_eq!(c.seconds, Some(4.0));
    assert!(!c.ollama_command.as_deref().unwrap().contains('\u{1b}'));
    assert!(c.summary().contains("2 of 2 prompts"), "{}", c.summary());
    for bad in [&b"[]"[..], b"{}", b"{\"passed\":\"yes\"}", b"not json"] {
        let e = parse_check(bad).unwrap_err().to_string();
        assert!(e.contains("export.json"), "{e}");
    }
}
