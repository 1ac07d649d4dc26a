//! What a single container is called: the `--network` it is on, and the
//! name it gets when `--name` gives none (two words and four hex digits,
//! as Docker's `brave_curie`).

/// The network a container is on (`--network`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkKind {
    /// The default bridge of single containers (Docker's `docker0`).
    #[default]
    Bridge,
    /// The host's network namespace.
    Host,
    /// A namespace with only `lo`.
    None,
}

impl NetworkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkKind::Bridge => "bridge",
            NetworkKind::Host => "host",
            NetworkKind::None => "none",
        }
    }
}

/// Docker-style generated names: an adjective and a surname-like noun.
pub fn generated_name(id: &str) -> String {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quiet", "sharp", "tender", "witty",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
        "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
    ];
    let n = u32::from_str_radix(&id[..8], 16).unwrap_or(0) as usize;
    format!("{}_{}_{}", LEFT[n % 16], RIGHT[(n / 16) % 16], &id[8..12])
}
