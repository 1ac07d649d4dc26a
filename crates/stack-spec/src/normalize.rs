//! Short syntaxes to long forms, units checked, files referenced by the
//! services read (`env_file`, `label_file`), relative paths made absolute.
//! Works on the merged JSON document; each problem is reported with the
//! position of the value that caused it, and all of them are collected.

use std::path::{Path, PathBuf};

use serde_json::{Map as JMap, Value as Json, json};

use crate::dotenv;
use crate::error::{Diagnostics, ErrorKind, Span};
use crate::interpolate::Vars;
use crate::model::{NetworkMode, PullPolicy, RestartPolicy};
use crate::node::{SpanTable, pointer_to_path, span_for};
use crate::ports::parse_port_spec;
use crate::units::{parse_bytes, parse_duration};

pub struct Ctx<'a> {
    pub spans: &'a SpanTable,
    pub diags: &'a mut Diagnostics,
    /// Variables for bare `KEY` environment entries.
    pub vars: &'a Vars,
    pub project_dir: &'a Path,
}

impl Ctx<'_> {
    fn span(&self, ptr: &str) -> Span {
        span_for(self.spans, ptr).unwrap_or_else(|| Span::synthetic("<stack file>"))
    }

    fn err(&mut self, kind: ErrorKind, ptr: &str, msg: impl Into<String>) {
        let span = self.span(ptr);
        self.diags.error(kind, &span, &pointer_to_path(ptr), msg);
    }

    fn warn(&mut self, ptr: &str, msg: impl Into<String>) {
        let span = self.span(ptr);
        self.diags.warn(&span, &pointer_to_path(ptr), msg);
    }

    fn abs(&self, p: &str) -> String {
        absolutize(self.project_dir, p)
    }
}

pub fn absolutize(base: &Path, p: &str) -> String {
    if p.starts_with('/') || is_windows_abs(p) {
        return p.to_string();
    }
    let expanded = if let Some(rest) = p.strip_prefix("~/") {
        return std::env::var_os("HOME").map_or_else(
            || p.to_string(),
            |h| PathBuf::from(h).join(rest).display().to_string(),
        );
    } else {
        p
    };
    let mut out = base.to_path_buf();
    for comp in Path::new(expanded).components() {
        match comp {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.display().to_string()
}

fn is_windows_abs(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

fn text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string_list(v: &mut Json) {
    if let Json::String(s) = v {
        *v = json!([s.clone()]);
    }
    if let Json::Array(items) = v {
        for i in items.iter_mut() {
            if let Some(t) = text(i) {
                *i = Json::String(t);
            }
        }
    }
}

fn string_map(v: &mut Json) {
    if let Json::Object(m) = v {
        for val in m.values_mut() {
            *val = Json::String(text(val).unwrap_or_default());
        }
    }
}

pub fn normalize_project(doc: &mut Json, ctx: &mut Ctx<'_>) {
    let Json::Object(root) = doc else { return };
    root.retain(|k, _| !k.starts_with("x-"));
    root.remove("version");
    if let Some(Json::Object(services)) = root.get_mut("services") {
        for (name, svc) in services.iter_mut() {
            let ptr = format!("/services/{}", esc(name));
            normalize_service(svc, &ptr, ctx);
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Json::Object(items)) = root.get_mut(kind) {
            for (name, item) in items.iter_mut() {
                if item.is_null() {
                    *item = json!({});
                }
                let ptr = format!("/{kind}/{}", esc(name));
                normalize_resource(kind, item, &ptr, ctx);
            }
        }
    }
}

fn esc(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn normalize_resource(kind: &str, item: &mut Json, ptr: &str, ctx: &mut Ctx<'_>) {
    let Json::Object(m) = item else { return };
    m.retain(|k, _| !k.starts_with("x-"));
    if let Some(labels) = m.get_mut("labels") {
        list_or_dict(labels);
        string_map(labels);
    }
    if let Some(opts) = m.get_mut("driver_opts") {
        string_map(opts);
    }
    // Long-deprecated `external: {name: x}`.
    if let Some(Json::Object(ext)) = m.get("external").cloned() {
        if let Some(n) = ext.get("name").cloned() {
            m.insert("name".into(), n);
        }
        m.insert("external".into(), Json::Bool(true));
        ctx.warn(
            &format!("{ptr}/external"),
            "`external.name` is deprecated, use `name` with `external: true`",
        );
    }
    let external = matches!(m.get("external"), Some(Json::Bool(true)))
        || matches!(m.get("external"), Some(Json::String(s)) if s == "true");
    // An external resource is created elsewhere: settings for creating it make no sense.
    let conflicts: &[&str] = match kind {
        "volumes" => &["driver", "driver_opts", "labels"],
        "networks" => &["driver", "driver_opts", "ipam", "internal"],
        _ => &["file", "environment", "content"],
    };
    if external {
        for conflict in conflicts {
            if m.contains_key(*conflict) {
                ctx.err(
                    ErrorKind::Value,
                    ptr,
                    format!("conflicting parameters \"external\" and \"{conflict}\" specified"),
                );
            }
        }
    }
    if matches!(kind, "secrets" | "configs") {
        let sources: Vec<&str> = ["file", "environment", "content"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if sources.len() > 1 {
            ctx.err(
                ErrorKind::Value,
                ptr,
                format!("{} are mutually exclusive", sources.join(", ")),
            );
        }
        if let Some(Json::String(f)) = m.get_mut("file") {
            *f = absolutize(ctx.project_dir, f);
            // A missing file is the reader's to report; one that is there
            // must be a regular file of bounded size (a FIFO, a device, a
            // directory or a huge file is a mistake found now).
            match stack_fs::check_regular(Path::new(f), crate::input::MAX_CONFIG_FILE) {
                Err(e) if !e.is_not_found() => ctx.err(
                    ErrorKind::Io,
                    &format!("{ptr}/file"),
                    format!("cannot use {f}: {}", e.reason()),
                ),
                _ => {}
            }
        }
    }
    if kind == "networks"
        && let Some(Json::Object(ipam)) = m.get_mut("ipam")
        && let Some(opts) = ipam.get_mut("options")
    {
        string_map(opts);
    }
}

fn list_or_dict(v: &mut Json) {
    if let Json::Array(items) = v {
        let mut m = JMap::new();
        for i in items.iter() {
            if let Some(t) = text(i) {
                match t.split_once('=') {
                    Some((k, val)) => m.insert(k.to_string(), Json::String(val.to_string())),
                    None => m.insert(t, Json::Null),
                };
            }
        }
        *v = Json::Object(m);
    }
}

fn check_duration(m: &JMap<String, Json>, key: &str, ptr: &str, ctx: &mut Ctx<'_>) {
    match m.get(key) {
        None | Some(Json::Null) => {}
        Some(Json::String(s)) => {
            if let Err(e) = parse_duration(s) {
                ctx.err(ErrorKind::Value, &format!("{ptr}/{key}"), e.to_string());
            }
        }
        Some(other) => ctx.err(
            ErrorKind::Value,
            &format!("{ptr}/{key}"),
            format!("expected a duration such as 1m30s, found {other}"),
        ),
    }
}

fn check_bytes(m: &mut JMap<String, Json>, key: &str, ptr: &str, ctx: &mut Ctx<'_>) {
    match m.get(key) {
        Some(Json::String(s)) => match parse_bytes(s) {
            Ok(v) => {
                m.insert(key.into(), json!(v));
            }
            Err(e) => ctx.err(ErrorKind::Value, &format!("{ptr}/{key}"), e.to_string()),
        },
        Some(Json::Number(n)) if n.as_i64().is_none() => {
            let v = n.as_f64().unwrap_or(0.0) as i64;
            m.insert(key.into(), json!(v));
        }
        _ => {}
    }
}

fn parse_str<T: std::str::FromStr>(m: &JMap<String, Json>, key: &str, ptr: &str, ctx: &mut Ctx<'_>)
where
    T::Err: std::fmt::Display,
{
    if let Some(Json::String(s)) = m.get(key)
        && let Err(e) = s.parse::<T>()
    {
        ctx.err(ErrorKind::Value, &format!("{ptr}/{key}"), e.to_string());
    }
}

fn normalize_service(svc: &mut Json, ptr: &str, ctx: &mut Ctx<'_>) {
    let Json::Object(m) = svc else { return };
    // `x-stack` is the one extension `stack` reads.
    m.retain(|k, _| !k.starts_with("x-") || k == "x-stack");

    for key in ["command", "entrypoint"] {
        if let Some(Json::String(s)) = m.get(key).cloned() {
            match shell_words::split(&s) {
                Ok(words) => {
                    m.insert(key.into(), json!(words));
                }
                Err(e) => ctx.err(
                    ErrorKind::Value,
                    &format!("{ptr}/{key}"),
                    format!("cannot split {s:?} into words: {e}"),
                ),
            }
        }
    }

    // environment (+ env_file, whose values the environment overrides)
    let mut env = JMap::new();
    if let Some(files) = m.get_mut("env_file") {
        if let Json::String(s) = files {
            *files = json!([s.clone()]);
        }
        if let Json::Array(items) = files {
            for (i, item) in items.iter_mut().enumerate() {
                if let Json::String(s) = item {
                    *item = json!({ "path": s.clone(), "required": true });
                }
                let Json::Object(f) = item else { continue };
                let Some(Json::String(p)) = f.get("path").cloned() else {
                    continue;
                };
                let required = !matches!(
                    f.get("required"),
                    Some(Json::Bool(false)) | Some(Json::String(_))
                ) || matches!(f.get("required"), Some(Json::String(s)) if s == "true");
                let path = absolutize(ctx.project_dir, &p);
                f.insert("path".into(), Json::String(path.clone()));
                let raw = matches!(f.get("format"), Some(Json::String(s)) if s == "raw");
                let iptr = format!("{ptr}/env_file/{i}");
                match crate::input::read_text(Path::new(&path), crate::input::MAX_ENV_FILE) {
                    Ok(content) => {
                        if raw {
                            for line in content.lines() {
                                if let Some((k, v)) = line.split_once('=') {
                                    env.insert(k.to_string(), Json::String(v.to_string()));
                                }
                            }
                        } else {
                            match dotenv::parse(&content, ctx.vars) {
                                Ok(vals) => {
                                    for (k, v) in vals {
                                        env.insert(k, v.map_or(Json::Null, Json::String));
                                    }
                                }
                                Err(e) => ctx.err(ErrorKind::Value, &iptr, format!("{path}: {e}")),
                            }
                        }
                    }
                    Err(e) if e.is_not_found() && required => {
                        ctx.err(ErrorKind::Io, &iptr, format!("env file {path} not found"))
                    }
                    Err(e) if e.is_not_found() => {}
                    // An optional file that is there but unreadable (a FIFO,
                    // a device, too large) is still a mistake to report.
                    Err(e) => ctx.err(ErrorKind::Io, &iptr, format!("env file: {e}")),
                }
            }
        }
    }
    if let Some(e) = m.get_mut("environment") {
        list_or_dict(e);
        if let Json::Object(em) = e {
            for (k, v) in em.iter() {
                if k.trim() != k || k.is_empty() {
                    ctx.err(
                        ErrorKind::Value,
                        &format!("{ptr}/environment/{}", esc(k)),
                        format!("environment variable {k:?} has leading or trailing whitespace in its name"),
                    );
                }
                let val = match v {
                    Json::Null => ctx
                        .vars
                        .get(k)
                        .map_or(Json::Null, |s| Json::String(s.clone())),
                    other => Json::String(text(other).unwrap_or_default()),
                };
                env.insert(k.clone(), val);
            }
        }
    }
    if env.is_empty() {
        m.remove("environment");
    } else {
        m.insert("environment".into(), Json::Object(env));
    }

    // labels (+ label_file)
    let mut labels = JMap::new();
    if let Some(mut files) = m.remove("label_file") {
        string_list(&mut files);
        if let Json::Array(items) = files {
            for (i, item) in items.iter().enumerate() {
                let Some(p) = item.as_str() else { continue };
                let path = ctx.abs(p);
                match crate::input::read_text(Path::new(&path), crate::input::MAX_ENV_FILE) {
                    Ok(content) => match dotenv::parse(&content, &Vars::new()) {
                        Ok(vals) => {
                            for (k, v) in vals {
                                labels.insert(k, Json::String(v.unwrap_or_default()));
                            }
                        }
                        Err(e) => ctx.err(
                            ErrorKind::Value,
                            &format!("{ptr}/label_file/{i}"),
                            format!("{path}: {e}"),
                        ),
                    },
                    Err(e) => ctx.err(
                        ErrorKind::Io,
                        &format!("{ptr}/label_file/{i}"),
                        format!("label file: {e}"),
                    ),
                }
            }
        }
    }
    if let Some(mut l) = m.remove("labels") {
        list_or_dict(&mut l);
        string_map(&mut l);
        if let Json::Object(lm) = l {
            labels.extend(lm);
        }
    }
    if !labels.is_empty() {
        m.insert("labels".into(), Json::Object(labels));
    }
    for key in ["annotations", "sysctls"] {
        if let Some(v) = m.get_mut(key) {
            list_or_dict(v);
            string_map(v);
        }
    }
    for key in [
        "dns",
        "dns_search",
        "dns_opt",
        "tmpfs",
        "expose",
        "cap_add",
        "cap_drop",
        "security_opt",
        "group_add",
        "profiles",
        "links",
        "volumes_from",
    ] {
        if let Some(v) = m.get_mut(key) {
            string_list(v);
        }
    }

    security_opts(m, ptr, ctx);

    // ports
    if let Some(Json::Array(items)) = m.get("ports").cloned() {
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let iptr = format!("{ptr}/ports/{i}");
            match item {
                Json::Object(mut p) => {
                    if let Some(v) = p.get("published").and_then(text) {
                        p.insert("published".into(), Json::String(v));
                    }
                    if let Some(Json::String(t)) = p.get("target").cloned() {
                        match t.parse::<u16>() {
                            Ok(t) => {
                                p.insert("target".into(), json!(t));
                            }
                            Err(_) => ctx.err(
                                ErrorKind::Value,
                                &format!("{iptr}/target"),
                                format!("invalid container port {t:?}"),
                            ),
                        }
                    }
                    out.push(Json::Object(p));
                }
                other => {
                    let spec = text(&other).unwrap_or_default();
                    match parse_port_spec(&spec) {
                        Ok(ports) => out.extend(
                            ports
                                .into_iter()
                                .map(|p| serde_json::to_value(p).unwrap_or(Json::Null)),
                        ),
                        Err(e) => ctx.err(ErrorKind::Value, &iptr, e.to_string()),
                    }
                }
            }
        }
        m.insert("ports".into(), Json::Array(out));
    }

    // volumes
    if let Some(Json::Array(items)) = m.get("volumes").cloned() {
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let iptr = format!("{ptr}/volumes/{i}");
            match item {
                Json::String(s) => match crate::volumes::parse_short(&s) {
                    Ok(v) => out.push(v),
                    Err(e) => ctx.err(ErrorKind::Value, &iptr, e.to_string()),
                },
                Json::Object(mut v) => {
                    if let Some(Json::Object(t)) = v.get_mut("tmpfs") {
                        check_bytes(t, "size", &format!("{iptr}/tmpfs"), ctx);
                        if let Some(Json::String(mode)) = t.get("mode").cloned()
                            && let Ok(n) = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
                        {
                            t.insert("mode".into(), json!(n));
                        }
                    }
                    out.push(Json::Object(v));
                }
                other => out.push(other),
            }
        }
        for v in out.iter_mut() {
            if let Json::Object(v) = v
                && v.get("type").and_then(Json::as_str) == Some("bind")
                && let Some(Json::String(src)) = v.get_mut("source")
            {
                *src = absolutize(ctx.project_dir, src);
            }
        }
        m.insert("volumes".into(), Json::Array(out));
    }

    // depends_on
    if let Some(Json::Object(deps)) = m.get_mut("depends_on") {
        for v in deps.values_mut() {
            let mut d = match v.take() {
                Json::Object(d) => d,
                _ => JMap::new(),
            };
            d.entry("condition").or_insert(json!("service_started"));
            d.entry("required").or_insert(json!(true));
            d.entry("restart").or_insert(json!(false));
            *v = Json::Object(d);
        }
    }

    if let Some(Json::Object(h)) = m.get_mut("healthcheck") {
        if let Some(Json::String(s)) = h.get("test").cloned() {
            h.insert("test".into(), json!(["CMD-SHELL", s]));
        }
        let hptr = format!("{ptr}/healthcheck");
        for key in ["interval", "timeout", "start_period", "start_interval"] {
            check_duration(h, key, &hptr, ctx);
        }
    }
    check_duration(m, "stop_grace_period", ptr, ctx);
    for key in ["mem_limit", "mem_reservation", "memswap_limit", "shm_size"] {
        check_bytes(m, key, ptr, ctx);
    }
    parse_str::<RestartPolicy>(m, "restart", ptr, ctx);
    parse_str::<NetworkMode>(m, "network_mode", ptr, ctx);
    parse_str::<PullPolicy>(m, "pull_policy", ptr, ctx);

    if let Some(Json::Object(d)) = m.get_mut("deploy") {
        let dptr = format!("{ptr}/deploy");
        if let Some(l) = d.get_mut("labels") {
            list_or_dict(l);
            string_map(l);
        }
        if let Some(Json::Object(r)) = d.get_mut("resources") {
            for which in ["limits", "reservations"] {
                if let Some(Json::Object(l)) = r.get_mut(which) {
                    check_bytes(l, "memory", &format!("{dptr}/resources/{which}"), ctx);
                }
            }
        }
        if let Some(Json::Object(rp)) = d.get_mut("restart_policy") {
            for key in ["delay", "window"] {
                check_duration(rp, key, &format!("{dptr}/restart_policy"), ctx);
            }
        }
        for section in ["update_config", "rollback_config"] {
            if let Some(Json::Object(c)) = d.get(section) {
                for key in ["delay", "monitor"] {
                    check_duration(c, key, &format!("{dptr}/{section}"), ctx);
                }
            }
        }
    }

    if let Some(Json::Object(u)) = m.get_mut("ulimits") {
        for v in u.values_mut() {
            if let Some(n) = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                *v = json!({ "soft": n, "hard": n });
            }
        }
    }

    if let Some(hosts) = m.get_mut("extra_hosts") {
        let mut out = Vec::new();
        match hosts {
            Json::Array(items) => {
                for i in items.iter() {
                    if let Some(t) = text(i) {
                        out.push(match t.split_once('=') {
                            Some(_) => t.clone(),
                            None => t
                                .split_once(':')
                                .map_or(t.clone(), |(h, ip)| format!("{h}={ip}")),
                        });
                    }
                }
            }
            Json::Object(map) => {
                for (h, v) in map.iter() {
                    match v {
                        Json::Array(ips) => {
                            out.extend(ips.iter().filter_map(text).map(|ip| format!("{h}={ip}")))
                        }
                        other => out.push(format!("{h}={}", text(other).unwrap_or_default())),
                    }
                }
            }
            _ => {}
        }
        *hosts = json!(out);
    }

    if let Some(Json::Array(devs)) = m.get_mut("devices") {
        for d in devs.iter_mut() {
            if let Json::String(s) = d {
                let parts: Vec<&str> = s.split(':').collect();
                *d = match parts.as_slice() {
                    [src] => json!({"source": src, "target": src, "permissions": "rwm"}),
                    [src, dst] => json!({"source": src, "target": dst, "permissions": "rwm"}),
                    [src, dst, perm, ..] => {
                        json!({"source": src, "target": dst, "permissions": perm})
                    }
                    [] => Json::Null,
                };
            }
        }
    }

    for key in ["secrets", "configs"] {
        if let Some(Json::Array(refs)) = m.get_mut(key) {
            for r in refs.iter_mut() {
                if let Json::String(s) = r {
                    *r = json!({ "source": s.clone() });
                }
                if let Json::Object(o) = r {
                    for k in ["uid", "gid"] {
                        if let Some(v) = o.get(k).and_then(text) {
                            o.insert(k.into(), Json::String(v));
                        }
                    }
                }
            }
        }
    }

    if let Some(Json::Object(b)) = m.get_mut("build") {
        if let Some(Json::String(c)) = b.get_mut("context")
            && !c.contains("://")
            && !c.starts_with("git@")
        {
            *c = absolutize(ctx.project_dir, c);
        }
        // As compose shows it: the context and Dockerfile named even when
        // defaulted.
        if !b.contains_key("context") {
            b.insert(
                "context".into(),
                Json::String(ctx.project_dir.display().to_string()),
            );
        }
        if !b.contains_key("dockerfile") && !b.contains_key("dockerfile_inline") {
            b.insert("dockerfile".into(), Json::String("Dockerfile".into()));
        }
        if let Some(args) = b.get_mut("args") {
            list_or_dict(args);
            if let Json::Object(a) = args {
                for (k, v) in a.iter_mut() {
                    *v = match &*v {
                        // A bare `KEY` takes its value from the environment of
                        // the command typed (and `.env`), here at load, not
                        // from whichever process builds; unset, it stays unset.
                        Json::Null => ctx
                            .vars
                            .get(k)
                            .map_or(Json::Null, |s| Json::String(s.clone())),
                        other => Json::String(text(other).unwrap_or_default()),
                    };
                }
            }
        }
        if let Some(l) = b.get_mut("labels") {
            list_or_dict(l);
            string_map(l);
        }
        // Named contexts: a map, local paths made absolute against the
        // project directory as `context` is (compose-go's rule); images
        // (`docker-image://`), URLs and `service:`/`target:` stay as given.
        if let Some(c) = b.get_mut("additional_contexts") {
            list_or_dict(c);
            if let Json::Object(c) = c {
                for v in c.values_mut() {
                    if let Json::String(p) = v
                        && !p.contains("://")
                        && !p.starts_with("git@")
                        && !p.starts_with("service:")
                        && !p.starts_with("target:")
                    {
                        *p = absolutize(ctx.project_dir, p);
                    }
                }
            }
        }
    }

    if let Some(Json::Object(blk)) = m.get_mut("blkio_config") {
        for key in [
            "device_read_bps",
            "device_write_bps",
            "device_read_iops",
            "device_write_iops",
        ] {
            if let Some(Json::Array(items)) = blk.get_mut(key) {
                for (i, it) in items.iter_mut().enumerate() {
                    if let Json::Object(o) = it {
                        check_bytes(o, "rate", &format!("{ptr}/blkio_config/{key}/{i}"), ctx);
                    }
                }
            }
        }
    }

    if let Some(Json::Object(dev)) = m.get_mut("develop")
        && let Some(Json::Array(watch)) = dev.get_mut("watch")
    {
        for w in watch.iter_mut() {
            if let Json::Object(w) = w {
                for key in ["ignore", "include"] {
                    if let Some(v) = w.get_mut(key) {
                        string_list(v);
                    }
                }
            }
        }
    }

    if let Some(Json::Object(l)) = m.get_mut("logging")
        && let Some(Json::Object(opts)) = l.get_mut("options")
    {
        for v in opts.values_mut() {
            if !v.is_null() {
                *v = Json::String(text(v).unwrap_or_default());
            }
        }
    }

    if let Some(Json::Object(nets)) = m.get_mut("networks") {
        for (net, v) in nets.iter_mut() {
            let Json::Object(n) = v else { continue };
            if let Some(o) = n.get_mut("driver_opts") {
                string_map(o);
            }
            for (key, v6) in [("ipv4_address", false), ("ipv6_address", true)] {
                if let Some(Json::String(ip)) = n.get(key) {
                    let ok = ip
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_ipv6() == v6);
                    if !ok {
                        let p = format!("{ptr}/networks/{}/{key}", esc(net));
                        let want = if v6 { "an IPv6" } else { "an IPv4" };
                        ctx.err(
                            ErrorKind::Value,
                            &p,
                            format!("{ip:?} is not {want} address"),
                        );
                    }
                }
            }
        }
    }
}

/// Checks each `security_opt`, makes a seccomp profile's path absolute and
/// checks it is a JSON object, and warns about LSM options stack does not
/// apply.
fn security_opts(m: &mut JMap<String, Json>, ptr: &str, ctx: &mut Ctx<'_>) {
    use crate::security_opt::SecurityOpt;
    let Some(Json::Array(items)) = m.get_mut("security_opt") else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        let Json::String(raw) = item else { continue };
        let iptr = format!("{ptr}/security_opt/{i}");
        match raw.parse::<SecurityOpt>() {
            Err(e) => ctx.err(ErrorKind::Value, &iptr, e.to_string()),
            Ok(SecurityOpt::SeccompProfile(file)) => {
                let path = ctx.abs(&file);
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        serde_json::from_str::<JMap<String, Json>>(&t).map_err(|e| e.to_string())
                    });
                if let Err(e) = parsed {
                    ctx.err(ErrorKind::Io, &iptr, format!("seccomp profile {path}: {e}"));
                }
                *item = Json::String(SecurityOpt::SeccompProfile(path).to_string());
            }
            Ok(SecurityOpt::Label(_)) => ctx.warn(&iptr, "stack applies no SELinux label; ignored"),
            Ok(SecurityOpt::Apparmor(_)) => {
                ctx.warn(&iptr, "stack applies no AppArmor profile; ignored")
            }
            Ok(_) => {}
        }
    }
}
