//! The container's root filesystem: spec mounts, /dev, pivot_root, masked and
//! read-only paths, sysctls, hostname. Runs in the container init only.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxNamespaceType, Mount};

use super::{InitConfig, StepError, fail, fail_io, fail_msg};
use crate::cgroups::{Cgroup, Version};
use crate::plan::{self, parse_mount_options};
use crate::protocol::Step;

const NONE: Option<&str> = None;

/// Resolves `unsafe_path` under `root` following symlinks as if `root` were `/`,
/// so a symlink in the image can never point a mount outside the rootfs.
pub(crate) fn secure_join(root: &Path, unsafe_path: &Path) -> PathBuf {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let cur: PathBuf = root.join(parts.iter().collect::<PathBuf>()).join(&c);
        match fs::read_link(&cur) {
            Ok(target) if links < 255 => {
                links += 1;
                if target.is_absolute() {
                    parts.clear();
                }
                for t in target.components().rev() {
                    match t {
                        Component::Normal(s) => pending.push(s.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(c),
        }
    }
    root.join(parts.iter().collect::<PathBuf>())
}

fn mkdir_all(p: &Path, step: Step) -> Result<(), StepError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p)
        .map_err(fail_io(step, format!("mkdir {}", p.display())))
}

fn touch(p: &Path, step: Step) -> Result<(), StepError> {
    if let Some(parent) = p.parent() {
        mkdir_all(parent, step)?;
    }
    if !p.exists() {
        fs::File::create(p).map_err(fail_io(step, format!("create {}", p.display())))?;
    }
    Ok(())
}

/// Sets up the root filesystem; `hook_point` runs after mounts and devices,
/// right before the switch to the new root.
pub(super) fn setup(
    cfg: &InitConfig,
    hook_point: &mut dyn FnMut() -> Result<(), StepError>,
) -> Result<(), StepError> {
    let spec = &cfg.spec;
    let linux = spec.linux().clone().unwrap_or_default();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    let has_ns = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let rootfs = &cfg.rootfs;

    if !has_ns(LinuxNamespaceType::Mount) {
        // Without a mount namespace nothing may be mounted; chroot is all we can do.
        hook_point()?;
        nix::unistd::chroot(rootfs).map_err(fail(Step::PivotRoot))?;
        nix::unistd::chdir("/").map_err(fail(Step::PivotRoot))?;
        return set_hostname(cfg, has_ns(LinuxNamespaceType::Uts));
    }

    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(fail(Step::RootfsPropagation))?;
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(fail(Step::Mounts))?;

    let mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(cfg, m)?;
    }
    let dev_is_tmpfs = mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs"));
    setup_dev(
        rootfs,
        dev_is_tmpfs,
        linux.devices().as_deref().unwrap_or(&[]),
    )?;

    hook_point()?;
    pivot_root(rootfs)?;

    if let Some(p) = linux.rootfs_propagation() {
        let f = plan::propagation_flags(p)
            .map_err(|e| fail_msg(Step::RootfsPropagation, e.to_string()))?;
        mount(NONE, "/", NONE, f, NONE).map_err(fail(Step::RootfsPropagation))?;
    }
    set_hostname(cfg, has_ns(LinuxNamespaceType::Uts))?;
    for (k, v) in linux.sysctl().iter().flatten() {
        let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        fs::write(&p, v).map_err(fail_io(Step::Sysctl, format!("{k}={v}")))?;
    }
    for p in linux.masked_paths().iter().flatten() {
        mask_path(Path::new(p))?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly_path(Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(NONE, "/", NONE, flags, NONE).map_err(fail(Step::ReadonlyRoot))?;
    }
    Ok(())
}

fn set_hostname(cfg: &InitConfig, new_uts: bool) -> Result<(), StepError> {
    if !new_uts {
        return Ok(());
    }
    if let Some(h) = cfg.spec.hostname() {
        nix::unistd::sethostname(h).map_err(fail(Step::Hostname))?;
    }
    if let Some(d) = cfg.spec.domainname() {
        // SAFETY: d outlives the call; length passed explicitly.
        let rc = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if rc != 0 {
            return Err(fail(Step::Hostname)(nix::Error::last()));
        }
    }
    Ok(())
}

fn mount_one(cfg: &InitConfig, m: &Mount) -> Result<(), StepError> {
    let rootfs = &cfg.rootfs;
    let dest = secure_join(rootfs, m.destination());
    let typ = m.typ().clone().unwrap_or_default();
    let opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
    let step = Step::Mounts;
    let what = |e: nix::Error| StepError {
        step,
        errno: Some(e as i32),
        message: format!(
            "mount {} on {}: {}",
            typ,
            m.destination().display(),
            e.desc()
        ),
    };

    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(cfg, &dest, &opts);
    }
    if opts.bind || typ == "bind" {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            cfg.bundle.join(src)
        };
        if src.is_dir() {
            mkdir_all(&dest, step)?
        } else {
            touch(&dest, step)?
        }
        let rec = opts.flags & MsFlags::MS_REC;
        mount(Some(&src), &dest, NONE, MsFlags::MS_BIND | rec, NONE).map_err(what)?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec | extra;
            mount(NONE, &dest, NONE, f, NONE).map_err(what)?;
        }
    } else {
        mkdir_all(&dest, step)?;
        let data = opts.data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
        let flags = opts.flags;
        let res = mount(Some(&src), &dest, Some(typ.as_str()), flags, data);
        match res {
            // sysfs cannot be mounted without a network namespace of our own: bind the host's.
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    &dest,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .map_err(what)?;
                if flags.contains(MsFlags::MS_RDONLY) {
                    let f = MsFlags::MS_BIND
                        | MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_REC;
                    mount(NONE, &dest, NONE, f, NONE).map_err(what)?;
                }
            }
            other => other.map_err(what)?,
        }
    }
    for p in &opts.propagation {
        mount(NONE, &dest, NONE, *p, NONE).map_err(what)?;
    }
    Ok(())
}

/// /sys/fs/cgroup inside the container shows only the container's own cgroup.
fn mount_cgroup(cfg: &InitConfig, dest: &Path, opts: &plan::MountOptions) -> Result<(), StepError> {
    let step = Step::Mounts;
    mkdir_all(dest, step)?;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let Some(cg) = &cfg.cgroup else { return Ok(()) };
    let bind_ro = |src: &Path, dst: &Path| -> Result<(), StepError> {
        mount(Some(src), dst, NONE, MsFlags::MS_BIND, NONE).map_err(fail(step))?;
        if ro {
            let f = MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC;
            mount(NONE, dst, NONE, f, NONE).map_err(fail(step))?;
        }
        Ok(())
    };
    match cg.version {
        Version::V2 => {
            for src in cg.dirs() {
                bind_ro(&src, dest)?;
            }
        }
        Version::V1 => {
            let f = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("tmpfs"), dest, Some("tmpfs"), f, Some("mode=755")).map_err(fail(step))?;
            for (m, src) in cg.v1_mounts.iter().zip(cgroup_dirs(cg)) {
                let Some(name) = m.mount_point.file_name() else {
                    continue;
                };
                let dst = dest.join(name);
                mkdir_all(&dst, step)?;
                if src.exists() {
                    bind_ro(&src, &dst)?;
                }
            }
            if ro {
                let f = f | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                mount(NONE, dest, NONE, f, Some("mode=755")).map_err(fail(step))?;
            }
        }
    }
    Ok(())
}

fn cgroup_dirs(cg: &Cgroup) -> Vec<PathBuf> {
    cg.dirs()
}

const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn make_device(
    rootfs: &Path,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), StepError> {
    let dest = secure_join(rootfs, path);
    if let Some(parent) = dest.parent() {
        mkdir_all(parent, Step::Devices)?;
    }
    let _ = fs::remove_file(&dest);
    match mknod(
        &dest,
        kind,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    ) {
        Ok(()) => {}
        // In a user namespace mknod is refused: bind the host's node instead.
        Err(nix::Error::EPERM) => {
            touch(&dest, Step::Devices)?;
            mount(
                Some(&Path::new("/").join(path.strip_prefix("/").unwrap_or(path))),
                &dest,
                NONE,
                MsFlags::MS_BIND,
                NONE,
            )
            .map_err(fail(Step::Devices))?;
            return Ok(());
        }
        Err(e) => return Err(fail(Step::Devices)(e)),
    }
    // mknod honours the umask; set the mode the spec asked for.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &dest,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(fail(Step::Devices))?;
    if let Some((u, g)) = owner {
        nix::unistd::chown(&dest, Some(u.into()), Some(g.into())).map_err(fail(Step::Devices))?;
    }
    Ok(())
}

fn setup_dev(rootfs: &Path, dev_is_tmpfs: bool, devices: &[LinuxDevice]) -> Result<(), StepError> {
    if dev_is_tmpfs {
        for (name, major, minor) in DEFAULT_DEVICES {
            make_device(
                rootfs,
                &Path::new("/dev").join(name),
                SFlag::S_IFCHR,
                major,
                minor,
                0o666,
                Some((0, 0)),
            )?;
        }
        let dev = rootfs.join("dev");
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("core", "/proc/kcore"),
        ] {
            let l = dev.join(link);
            if fs::symlink_metadata(&l).is_err() {
                symlink(target, &l)
                    .map_err(fail_io(Step::Devices, format!("symlink {}", l.display())))?;
            }
        }
        let ptmx = dev.join("ptmx");
        let _ = fs::remove_file(&ptmx);
        symlink("pts/ptmx", &ptmx).map_err(fail_io(Step::Devices, "symlink /dev/ptmx".into()))?;
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        make_device(
            rootfs,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            owner,
        )?;
    }
    Ok(())
}

fn pivot_root(rootfs: &Path) -> Result<(), StepError> {
    let step = Step::PivotRoot;
    nix::unistd::chdir(rootfs).map_err(fail(step))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; the old
    // root is then detached. Making it a slave first keeps the unmount from
    // propagating to the host.
    nix::unistd::pivot_root(".", ".").map_err(fail(step))?;
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE).map_err(fail(step))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(fail(step))?;
    nix::unistd::chdir("/").map_err(fail(step))
}

fn mask_path(p: &Path) -> Result<(), StepError> {
    let step = Step::MaskedPaths;
    let res = if p.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
    } else {
        mount(Some("/dev/null"), p, NONE, MsFlags::MS_BIND, NONE)
    };
    match res {
        Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(StepError {
            step,
            errno: Some(e as i32),
            message: format!("mask {}: {}", p.display(), e.desc()),
        }),
    }
}

fn readonly_path(p: &Path) -> Result<(), StepError> {
    let step = Step::ReadonlyPaths;
    match mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(fail(step)(e)),
    }
    // Keep the flags the mount already has (proc is nosuid,nodev,noexec).
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
    if let Ok(st) = nix::sys::statvfs::statvfs(p) {
        use nix::sys::statvfs::FsFlags;
        let f = st.flags();
        if f.contains(FsFlags::ST_NOSUID) {
            flags |= MsFlags::MS_NOSUID;
        }
        if f.contains(FsFlags::ST_NODEV) {
            flags |= MsFlags::MS_NODEV;
        }
        if f.contains(FsFlags::ST_NOEXEC) {
            flags |= MsFlags::MS_NOEXEC;
        }
    }
    mount(NONE, p, NONE, flags, NONE).map_err(fail(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a")).unwrap();
        symlink("/etc", root.join("a/evil")).unwrap();
        symlink("../../../../", root.join("up")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/a/evil/passwd")),
            root.join("etc/passwd")
        );
        assert_eq!(secure_join(root, Path::new("/up/x")), root.join("x"));
        assert_eq!(secure_join(root, Path::new("/../../x")), root.join("x"));
        assert_eq!(secure_join(root, Path::new("/a/b")), root.join("a/b"));
    }
}
