//! Arbitrary bytes as a Dockerfile: the parser must return stages or
//! errors with positions, never panic, and finish quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match stack_build::parse(std::path::Path::new("Dockerfile"), text) {
        Ok(file) => {
            // Variable expansion over every word must not panic either.
            let scope = stack_build::vars::Scope::new();
            for stage in &file.stages {
                let _ = stack_build::vars::expand(&stage.base, &scope, file.escape);
                for step in &stage.steps {
                    let _ = stack_build::vars::expand_words(&step.text, &scope, file.escape);
                }
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
