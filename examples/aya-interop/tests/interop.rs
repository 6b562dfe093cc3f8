//! bpfload loads, aya attaches to `lo` and reads the map: every packet sent to 127.0.0.1 passes
//! the XDP program once and adds the configured increment. Runs as root (CI runs it as root).

#[test]
fn bpfload_loads_aya_attaches_and_reads_the_counter() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test as root"
        );
        eprintln!("SKIP bpfload_loads_aya_attaches_and_reads_the_counter: needs root");
        return;
    }
    let bpffs = std::path::Path::new("/sys/fs/bpf");
    let report = bpfload_aya_interop::run(64, 3, bpffs).expect("load, attach, send, read");
    eprintln!("{report:?}");
    // Other loopback traffic may pass too, so at least every packet we sent counted, each by 3.
    assert!(
        report.counter >= 64 * 3,
        "counter {} < 64 packets x 3",
        report.counter
    );
    assert_eq!(
        report.counter % 3,
        0,
        "every packet adds the configured increment 3"
    );
}
