//! Device rules on cgroup v2: v2 has no `devices.allow`, so, as runc and
//! crun do, the rules become a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached
//! to the container's cgroup; the kernel runs it on every open and mknod of a
//! device node and refuses the access when it returns 0.
//!
//! The rules are the same list v1 writes ([`super::v1::device_rules`]), and
//! they mean the same: the last rule that matches a device decides. The
//! program therefore tests them from the last to the first and denies what no
//! rule matches. It is a handful of instruction kinds, encoded here: the
//! eBPF crates on crates.io load programs from compiled ELF objects (aya,
//! libbpf-rs) or only interpret them (rbpf), and none builds one at run time.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::CgroupError;

/// One rule in the kernel's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// `BPF_DEVCG_DEV_BLOCK` (1), `BPF_DEVCG_DEV_CHAR` (2), or None for both.
    pub kind: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `BPF_DEVCG_ACC_MKNOD` (1) | `_READ` (2) | `_WRITE` (4).
    pub access: u32,
}

const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
const ACC_ALL: u32 = 7;

/// Parses a v1 rule line (`c 1:3 rwm`, `a *:* m`, `b 8:* r`).
pub fn parse_rule(allow: bool, line: &str) -> Option<Rule> {
    let mut it = line.split_whitespace();
    let kind = match it.next()? {
        "a" => None,
        "b" => Some(DEV_BLOCK),
        "c" => Some(DEV_CHAR),
        _ => return None,
    };
    let (major, minor) = it.next()?.split_once(':')?;
    let num = |s: &str| -> Option<Option<u32>> {
        if s == "*" {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    let access = it.next()?.chars().try_fold(0, |acc, c| match c {
        'm' => Some(acc | 1),
        'r' => Some(acc | 2),
        'w' => Some(acc | 4),
        _ => None,
    })?;
    Some(Rule {
        allow,
        kind,
        major: num(major)?,
        minor: num(minor)?,
        access,
    })
}

/// One eBPF instruction as the kernel lays it out (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes: class | size/op | source.
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const AND32_X: u8 = 0x5c;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// The program for `rules`: r2 = device type, r3 = requested access, r4 =
/// major, r5 = minor (from `struct bpf_cgroup_dev_ctx`), then one block per
/// rule, last rule first, each jumping past itself when it does not match;
/// a rule that matches everything ends the program.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let mut tests: Vec<Vec<Insn>> = Vec::new();
        if let Some(k) = r.kind {
            tests.push(vec![insn(JNE_K, 2, 0, 0, k as i32)]);
        }
        if r.access & ACC_ALL != ACC_ALL {
            // Matches when every access asked for is among the rule's.
            tests.push(vec![
                insn(MOV64_X, 1, 3, 0, 0),
                insn(AND32_K, 1, 0, 0, r.access as i32),
                insn(JNE_X, 1, 3, 0, 0),
            ]);
        }
        if let Some(m) = r.major {
            tests.push(vec![insn(JNE_K, 4, 0, 0, m as i32)]);
        }
        if let Some(m) = r.minor {
            tests.push(vec![insn(JNE_K, 5, 0, 0, m as i32)]);
        }
        let catch_all = tests.is_empty();
        let mut block: Vec<Insn> = tests.into_iter().flatten().collect();
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        // Each jump skips to the end of the block.
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        if catch_all {
            // The verifier refuses code that cannot be reached.
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Evaluates `prog` for one access the way the kernel would: the unit tests
/// check the program's meaning, not only its bytes.
pub fn evaluate(prog: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> Option<u64> {
    let ctx = [(access << 16) | kind, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_W if src == 1 => r[dst] = u64::from(*ctx.get(i.off as usize / 4)?),
            AND32_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
            AND32_X => r[dst] = u64::from(r[dst] as u32 & r[src] as u32),
            RSH32_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = i.imm as i64 as u64,
            JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
            JNE_X if r[dst] != r[src] => pc += i.off as usize,
            JNE_K | JNE_X => {}
            EXIT => return Some(r[0]),
            _ => return None,
        }
    }
    None
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of ancestors run too: a nested stack stays inside its parent's rules.
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a properly laid out, zero-padded bpf_attr variant
    // that lives for the call; the kernel reads only size_of::<T>() bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Loads the program for `rules` and attaches it to the cgroup directory
/// `dir`. It stays attached for the cgroup's life (the kernel drops it when
/// the cgroup is removed), so nothing needs to be kept open.
pub fn attach(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let prog = program(rules);
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"stack_devcg");
    let mut load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    // Without a log first: the verifier is slower when it writes one, and
    // only a refused program needs it.
    let fd = match bpf(BPF_PROG_LOAD, &mut load) {
        Ok(fd) => fd,
        Err(_) => {
            let mut log = vec![0u8; 64 * 1024];
            load.log_level = 1;
            load.log_size = log.len() as u32;
            load.log_buf = log.as_mut_ptr() as u64;
            bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
                let verifier = String::from_utf8_lossy(&log);
                CgroupError::DeviceProgram {
                    op: "load",
                    path: dir.to_path_buf(),
                    detail: verifier.trim_end_matches('\0').trim().to_string(),
                    source: e,
                }
            })?
        }
    };
    // SAFETY: the kernel just returned this fd for us alone.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::File::open(dir).map_err(|source| CgroupError::Io {
        op: "open",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut att = ProgAttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut att).map_err(|source| CgroupError::DeviceProgram {
        op: "attach",
        path: dir.to_path_buf(),
        detail: String::new(),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::v1::device_rules;

    const R: u32 = 2;
    const W: u32 = 4;
    const M: u32 = 1;

    fn default_program() -> Vec<Insn> {
        let rules: Vec<Rule> = device_rules(None, &[])
            .iter()
            .map(|(a, l)| parse_rule(*a, l).unwrap())
            .collect();
        program(&rules)
    }

    #[test]
    fn rule_lines_parse() {
        assert_eq!(
            parse_rule(false, "a *:* rwm"),
            Some(Rule {
                allow: false,
                kind: None,
                major: None,
                minor: None,
                access: 7
            })
        );
        assert_eq!(
            parse_rule(true, "c 136:* rw"),
            Some(Rule {
                allow: true,
                kind: Some(DEV_CHAR),
                major: Some(136),
                minor: None,
                access: 6
            })
        );
        assert_eq!(parse_rule(true, "x 1:2 r"), None);
        assert_eq!(parse_rule(true, "c 1:2 rx"), None);
    }

    #[test]
    fn the_default_list_allows_null_and_denies_a_disk() {
        let p = default_program();
        assert_eq!(evaluate(&p, DEV_CHAR, R, 1, 3), Some(1), "/dev/null read");
        assert_eq!(evaluate(&p, DEV_CHAR, W, 1, 3), Some(1), "/dev/null write");
        assert_eq!(evaluate(&p, DEV_CHAR, R, 136, 4), Some(1), "a pty");
        assert_eq!(evaluate(&p, DEV_BLOCK, R, 8, 0), Some(0), "/dev/sda read");
        assert_eq!(evaluate(&p, DEV_BLOCK, W, 8, 0), Some(0), "/dev/sda write");
        // mknod of anything is allowed (opening it is what is refused).
        assert_eq!(evaluate(&p, DEV_BLOCK, M, 8, 0), Some(1), "mknod");
        assert_eq!(evaluate(&p, DEV_CHAR, R | W, 10, 229), Some(0), "fuse");
        // The catch-all deny ends the program: nothing after it is unreachable.
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
        assert_eq!(p[p.len() - 2], insn(MOV64_K, 0, 0, 0, 0));
    }

    #[test]
    fn later_rules_win_and_access_must_be_covered() {
        let rules = [
            parse_rule(false, "a *:* rwm").unwrap(),
            parse_rule(true, "b 8:* r").unwrap(),
            parse_rule(false, "b 8:1 rwm").unwrap(),
        ];
        let p = program(&rules);
        assert_eq!(evaluate(&p, DEV_BLOCK, R, 8, 0), Some(1));
        assert_eq!(evaluate(&p, DEV_BLOCK, W, 8, 0), Some(0), "only r allowed");
        assert_eq!(evaluate(&p, DEV_BLOCK, R | W, 8, 0), Some(0));
        assert_eq!(evaluate(&p, DEV_BLOCK, R, 8, 1), Some(0), "the later deny");
        assert_eq!(evaluate(&p, DEV_CHAR, R, 8, 0), Some(0), "type differs");
        // No rule at all: nothing is allowed.
        assert_eq!(evaluate(&program(&[]), DEV_CHAR, R, 1, 3), Some(0));
    }
}
