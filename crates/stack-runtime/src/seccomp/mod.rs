//! Seccomp: an OCI `linux.seccomp` profile compiled to BPF with libseccomp,
//! cached on disk by the profile's hash (as crun does), and loaded in the
//! container init with one `seccomp(2)` call — the init needs no libseccomp.

mod default_profile;
mod docker_profile;

pub use default_profile::docker_default;
pub use docker_profile::{ProfileError, from_docker_profile};

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("libseccomp: {0}")]
    Lib(#[from] libseccomp::error::SeccompError),
    #[error("seccomp action {0:?} is not supported")]
    Action(LinuxSeccompAction),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serializing profile: {0}")]
    Serialize(#[from] serde_json::Error),
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, SeccompError> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32)
        }
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.unwrap_or(libc::EPERM as u32) as u16)
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        other => return Err(SeccompError::Action(other)),
    })
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        _ => return None,
    })
}

fn compare(a: &oci_spec::runtime::LinuxSeccompArg) -> ScmpArgCompare {
    let op = match a.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // OCI: value is the mask, valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                a.index() as u32,
                ScmpCompareOp::MaskedEqual(a.value()),
                a.value_two().unwrap_or(0),
            );
        }
    };
    ScmpArgCompare::new(a.index() as u32, op, a.value())
}

/// Compiles a profile to BPF (`struct sock_filter` array bytes).
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>, SeccompError> {
    let default = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default)?;
    // The runtime sets no_new_privs itself when the spec asks; libseccomp must not.
    ctx.set_ctl_nnp(false)?;
    // A binary tree over syscall numbers instead of libseccomp's default linear
    // chain: with Docker's ~350 allowed syscalls every load made the kernel
    // emulate the chain for each syscall number of both x86 ABIs to build its
    // per-filter allow cache (the bulk of a health probe's `seccomp(2)` time),
    // and every syscall the container makes walks it.
    ctx.set_ctl_optimize(2)?;
    for a in profile.architectures().iter().flatten() {
        if let Some(a) = arch(*a) {
            ctx.add_arch(a)?;
        }
    }
    for sc in profile.syscalls().iter().flatten() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == default {
            continue;
        }
        let args = sc.args().clone().unwrap_or_default();
        for name in sc.names() {
            // Unknown names (newer syscalls, other arches) are skipped, as runc does.
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
            idx.sort_unstable();
            idx.dedup();
            if args.is_empty() {
                ctx.add_rule(act, nr)?;
            } else if idx.len() == args.len() {
                let cmps: Vec<ScmpArgCompare> = args.iter().map(compare).collect();
                ctx.add_rule_conditional(act, nr, &cmps)?;
            } else {
                // Same argument tested twice: libseccomp wants one rule per comparison.
                for a in &args {
                    ctx.add_rule_conditional(act, nr, &[compare(a)])?;
                }
            }
        }
    }
    // An anonymous memory file: no name for concurrent compilations in one
    // process to collide on (a name from the pid and the clock did, where
    // the clock is coarse), nothing left on disk.
    let memfd = |source| SeccompError::Io {
        op: "memfd",
        path: PathBuf::from("memfd:stack-seccomp"),
        source,
    };
    let fd =
        nix::sys::memfd::memfd_create(c"stack-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| memfd(e.into()))?;
    let mut file = fs::File::from(fd);
    ctx.export_bpf(&file)?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(memfd)?;
    Ok(bytes)
}

/// Names how `compile` lays out a filter (see `set_ctl_optimize` there).
const CACHE_LAYOUT: &[u8] = b"tree\n";

/// Compiles `profile`, or returns the BPF cached under `cache_dir` for the same profile.
pub fn compile_cached(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<Vec<u8>, SeccompError> {
    // The layout is part of the key, so filters cached in another layout are not reused.
    let mut hash = Sha256::new();
    hash.update(CACHE_LAYOUT);
    hash.update(serde_json::to_vec(profile)?);
    let key = hex::encode(hash.finalize());
    let path = cache_dir.join(format!("{key}.bpf"));
    if let Ok(b) = fs::read(&path) {
        return Ok(b);
    }
    let bpf = compile(profile)?;
    if fs::create_dir_all(cache_dir).is_ok() {
        // A failed cache write only costs a recompile next time.
        let _ = crate::state::write_atomic(&path, &bpf);
    }
    Ok(bpf)
}

/// Installs a compiled filter on the calling thread (the container init).
pub fn load(bpf: &[u8], log: bool) -> std::io::Result<()> {
    let len = bpf.len() / std::mem::size_of::<libc::sock_filter>();
    let prog = libc::sock_fprog {
        len: len as u16,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    let flags: libc::c_ulong = if log { 2 } else { 0 }; // SECCOMP_FILTER_FLAG_LOG
    // SAFETY: prog points at `len` sock_filter structs that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1 as libc::c_ulong,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_default_profile_and_caches() {
        let p = docker_default(&crate::plan::DEFAULT_CAPS);
        let dir = tempfile::tempdir().unwrap();
        let a = compile_cached(&p, dir.path()).unwrap();
        assert!(a.len() > 100 && a.len().is_multiple_of(8));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let b = compile_cached(&p, dir.path()).unwrap();
        assert_eq!(a, b);
    }
}
