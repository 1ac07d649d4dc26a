//! Pulls one image into a store: `pull ROOT REFERENCE`. Used by
//! bench/image/run.sh to time the library without the rest of the binary.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(reference)) = (args.next(), args.next()) else {
        return Err("usage: pull ROOT REFERENCE".into());
    };
    let store = stack_image::Store::open(root.as_ref())?;
    let reference = stack_image::Reference::parse(&reference)?;
    let opts = stack_image::PullOptions {
        progress: stack_image::progress::ProgressMode::Quiet,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(store.pull(&reference, &opts))?;
    println!(
        "{} {} blobs {} bytes",
        report.id, report.blobs_fetched, report.bytes_fetched
    );
    Ok(())
}
