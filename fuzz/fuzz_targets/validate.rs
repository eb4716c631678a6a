//! The whole validator on arbitrary bytes, as JSONL and as a `.json` array: it must never
//! panic, and its counts must add up.
#![no_main]

use brightrun_engine::validation::{ValidationOptions, validate_reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["d.jsonl", "d.json", "d.txt"] {
        let r = validate_reader(data, name, &ValidationOptions::default(), &mut |_| {}).unwrap();
        let s = &r.statistics;
        assert_eq!(
            s.total_examples,
            s.total_training_pairs + s.total_validation_pairs
        );
        assert!(!r.training_ready || s.error_count == 0);
    }
});
