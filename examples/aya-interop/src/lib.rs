//! bpfload loads, aya attaches: the object is loaded by bpfload (with a BPF token when the bpffs
//! at `/sys/fs/bpf` delegates one, as libbpf does), the map is handed to aya through
//! `MapData::from_fd`, and the program through a bpffs pin and aya's `Xdp::from_pin` (aya 0.14
//! has no way to adopt a program fd directly). aya then attaches the XDP program to `lo`.

use std::error::Error;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};

use aya::maps::{Array, Map, MapData};
use aya::programs::xdp::XdpMode;
use aya::programs::Xdp;
use aya_obj::programs::XdpAttachType;

/// The XDP counter object, built from `bpf/xdp_counter.bpf.c` by `bpf/build.sh`.
pub const OBJECT: &[u8] = include_bytes!("../bpf/xdp_counter.bpf.o");

/// What one run observed.
#[derive(Debug)]
pub struct Report {
    /// Packets sent to 127.0.0.1.
    pub sent: u64,
    /// The `increment` configured through bpfload before load.
    pub increment: u64,
    /// Slot 0 of the `packets` map, read through aya, after the packets went through `lo`.
    pub counter: u64,
    /// bpfload's account of the token (used, or why not).
    pub token: String,
}

/// Removes the pin when dropped, so a failed run leaves no file behind.
struct Pin(PathBuf);

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Loads with bpfload, attaches with aya to `lo`, sends `packets` UDP datagrams to 127.0.0.1
/// and reads the counter through aya. Needs root (or a token that allows XDP) and a bpffs at
/// `bpffs` (usually `/sys/fs/bpf`) for the program pin.
pub fn run(packets: u64, increment: u64, bpffs: &Path) -> Result<Report, Box<dyn Error>> {
    let object = bpfload::Object::open_bytes("xdp_counter", OBJECT)?;
    let loaded = bpfload::Loader::new()
        .set_global("increment", &increment.to_ne_bytes())
        .load(&object)?;
    let token = format!("{:?}", loaded.token_report());

    // Map: aya adopts a duplicate of bpfload's fd.
    let map_fd = loaded
        .map("packets")
        .ok_or("no map 'packets'")?
        .fd()
        .try_clone_to_owned()?;
    let counters: Array<MapData, u64> = Array::try_from(Map::Array(MapData::from_fd(map_fd)?))?;

    // Program: pin bpfload's fd, open the pin with aya.
    let prog = loaded
        .program("count_packets")
        .ok_or("no program 'count_packets'")?;
    let pin = Pin(bpffs.join(format!("bpfload-aya-interop-{}", std::process::id())));
    let prog_fd = prog
        .result()
        .map_err(|e| format!("program 'count_packets' did not load: {e}"))?;
    bpfload_syscall::obj::pin(prog_fd, &pin.0)?;
    let mut xdp = Xdp::from_pin(&pin.0, XdpAttachType::Interface)?;
    // Loopback has no native XDP: generic (SKB) mode.
    let link = xdp.attach("lo", XdpMode::Skb)?;

    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    for i in 0..packets {
        tx.send_to(&i.to_ne_bytes(), rx.local_addr()?)?;
    }
    let counter = counters.get(&0, 0)?;
    xdp.detach(link)?;
    Ok(Report {
        sent: packets,
        increment,
        counter,
        token,
    })
}
