//! Docker's plain tables: left-aligned columns three spaces apart, as wide
//! as their widest cell, and sizes in decimal units (`12.3MB`).

use std::io::Write as _;

/// Prints `rows` (the header first) as aligned columns. A closed stdout
/// (`| head`) ends the output quietly.
pub fn print<const N: usize>(rows: &[[String; N]]) {
    let mut out = std::io::stdout().lock();
    for line in render(rows) {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}

/// Prints tab-separated lines (the header first) as aligned columns, as
/// docker's tabwriter does for `--format 'table ...'`.
pub fn print_lines(lines: &[String]) {
    let columns = lines
        .iter()
        .map(|l| l.split('\t').count())
        .max()
        .unwrap_or(0);
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let mut cells: Vec<String> = l.split('\t').map(str::to_owned).collect();
            cells.resize(columns, String::new());
            cells
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for line in render_rows(&rows) {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}

/// The lines [`print`] prints.
pub fn render<const N: usize>(rows: &[[String; N]]) -> Vec<String> {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.to_vec()).collect();
    render_rows(&rows)
}

fn render_rows(rows: &[Vec<String>]) -> Vec<String> {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join("   ").trim_end().to_owned()
        })
        .collect()
}

/// A size as Docker prints images': powers of 1000, one decimal.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = [
            ["NAME".to_owned(), "STATUS".into(), "PORTS".into()],
            ["wé".to_owned(), "Up 2 seconds".into(), String::new()],
        ];
        assert_eq!(
            render(&rows),
            ["NAME   STATUS         PORTS", "wé     Up 2 seconds"]
        );
    }

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(4_200_000), "4.2MB");
    }
}
