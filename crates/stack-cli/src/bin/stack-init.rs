//! `stack-init`: the container-side half of every container start, `exec`
//! and health probe. The runtime starts it with a channel descriptor; it
//! sets up the namespaces, mounts and limits and then becomes (or starts)
//! the container's program. A binary of its own, installed beside `stack`,
//! because that happens once per container and once per probe: executing
//! this one costs a fraction of mapping and relocating the whole CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Never returns when started as an init stage.
    stack_runtime::init_main();
    eprintln!("stack-init: the container-side helper of stack, started by stack itself");
    ExitCode::from(2)
}
