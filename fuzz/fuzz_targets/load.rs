//! Arbitrary bytes as a stack file: the loader must return a project or
//! errors, never panic, and finish quickly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = stack_spec::LoadOptions::new("/nonexistent/fuzz")
        .with_content("stack.yaml", text)
        .with_environment([("FOO", "bar")]);
    if let Err(errors) = stack_spec::load(&opts) {
        // Formatting every error must not panic either.
        let _ = errors.to_string();
    }
});
