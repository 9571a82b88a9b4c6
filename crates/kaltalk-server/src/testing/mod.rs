//! Test support shared by the unit and the integration tests (and the benchmarks): a
//! MaxMind DB writer just big enough to build country fixtures inside a test, so no
//! database file is committed or downloaded; and a fake OpenAI-compatible chat model.

pub mod fake_chat;

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Data types of the MaxMind DB format that the fixtures use.
const STRING: u8 = 2;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;

const SEPARATOR: [u8; 16] = [0; 16];
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
const RECORD_SIZE: u16 = 24;

/// An `.mmdb` file mapping each `(network, country)` to `{"country": {"iso_code": country}}`,
/// as GeoLite2-Country does. The tree is IPv6 with 24-bit records; an IPv4 network sits
/// at `::a.b.c.d`, under 96 zero bits, which is where readers look IPv4 addresses up.
/// Networks are CIDR strings (`192.0.2.0/24`, `2001:db8::/32`) and must not overlap.
pub fn country_mmdb(networks: &[(&str, &str)]) -> Result<Vec<u8>, String> {
    let mut tree = Tree::default();
    let mut data = Vec::new();
    let mut offsets: BTreeMap<&str, usize> = BTreeMap::new();
    for &(network, country) in networks {
        let (key, bits) = parse_network(network)?;
        let offset = match offsets.get(country) {
            Some(&offset) => offset,
            None => {
                let offset = data.len();
                map(&mut data, 1)?;
                string(&mut data, "country")?;
                map(&mut data, 1)?;
                string(&mut data, "iso_code")?;
                string(&mut data, country)?;
                offsets.insert(country, offset);
                offset
            }
        };
        tree.insert(key, bits, offset)
            .map_err(|why| format!("{network}: {why}"))?;
    }

    let node_count = tree.nodes.len();
    let mut file = Vec::with_capacity(node_count * 6 + SEPARATOR.len() + data.len() + 256);
    for node in &tree.nodes {
        for record in node {
            let value = match *record {
                Record::Empty => node_count,
                Record::Node(next) => next,
                Record::Data(offset) => node_count + SEPARATOR.len() + offset,
            };
            let value = u32::try_from(value)
                .ok()
                .filter(|v| *v < 1 << RECORD_SIZE)
                .ok_or("too big for 24-bit records")?;
            file.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    file.extend_from_slice(&SEPARATOR);
    file.extend_from_slice(&data);
    file.extend_from_slice(METADATA_MARKER);
    let meta = &mut file;
    map(meta, 9)?;
    string(meta, "binary_format_major_version")?;
    uint(meta, UINT16, 2)?;
    string(meta, "binary_format_minor_version")?;
    uint(meta, UINT16, 0)?;
    string(meta, "build_epoch")?;
    uint(meta, UINT64, 1_767_225_600)?;
    string(meta, "database_type")?;
    string(meta, "KalTalk-Test-Country")?;
    string(meta, "description")?;
    map(meta, 1)?;
    string(meta, "en")?;
    string(meta, "KalTalk test fixture")?;
    string(meta, "ip_version")?;
    uint(meta, UINT16, 6)?;
    string(meta, "languages")?;
    control(meta, ARRAY, 1)?;
    string(meta, "en")?;
    string(meta, "node_count")?;
    uint(meta, UINT32, node_count as u64)?;
    string(meta, "record_size")?;
    uint(meta, UINT16, RECORD_SIZE.into())?;
    Ok(file)
}

/// The network's first address as 128 bits, and its prefix length in the IPv6 tree.
fn parse_network(network: &str) -> Result<(u128, u32), String> {
    let (addr, prefix) = network
        .split_once('/')
        .ok_or_else(|| format!("{network}: not a CIDR range"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{network}: bad address"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| format!("{network}: bad prefix"))?;
    let (key, max, under) = match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32, 96),
        IpAddr::V6(v6) => (u128::from(v6), 128, 0),
    };
    if prefix > max || prefix + under == 0 {
        return Err(format!("{network}: prefix out of range"));
    }
    Ok((key, prefix + under))
}

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

/// A binary trie over address bits; node 0 is the root.
struct Tree {
    nodes: Vec<[Record; 2]>,
}

impl Default for Tree {
    fn default() -> Self {
        Self {
            nodes: vec![[Record::Empty; 2]],
        }
    }
}

impl Tree {
    fn insert(&mut self, key: u128, bits: u32, data: usize) -> Result<(), &'static str> {
        let mut node = 0;
        for depth in 0..bits {
            let side = usize::from((key >> (127 - depth)) & 1 == 1);
            let last = depth + 1 == bits;
            match (self.nodes[node][side], last) {
                (Record::Empty, true) => self.nodes[node][side] = Record::Data(data),
                (Record::Empty, false) => {
                    let next = self.nodes.len();
                    self.nodes.push([Record::Empty; 2]);
                    self.nodes[node][side] = Record::Node(next);
                    node = next;
                }
                (Record::Node(next), false) => node = next,
                _ => return Err("overlaps another network"),
            }
        }
        Ok(())
    }
}

/// A control byte (type and payload size), with the extended-type byte for types past 7.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) -> Result<(), String> {
    let (head, extended) = if kind <= 7 {
        (kind << 5, None)
    } else {
        (0, Some(kind - 7))
    };
    let too_big = || format!("a value of {size} bytes is too big for this writer");
    match size {
        0..29 => out.push(head | size as u8),
        29..285 => out.push(head | 29),
        _ => return Err(too_big()),
    }
    out.extend(extended);
    if size >= 29 {
        out.push(u8::try_from(size - 29).map_err(|_| too_big())?);
    }
    Ok(())
}

fn string(out: &mut Vec<u8>, value: &str) -> Result<(), String> {
    control(out, STRING, value.len())?;
    out.extend_from_slice(value.as_bytes());
    Ok(())
}

fn map(out: &mut Vec<u8>, entries: usize) -> Result<(), String> {
    control(out, MAP, entries)
}

/// An unsigned integer in as few big-endian bytes as it needs (zero needs none).
fn uint(out: &mut Vec<u8>, kind: u8, value: u64) -> Result<(), String> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, bytes.len() - skip)?;
    out.extend_from_slice(&bytes[skip..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxminddb::{Reader, path};

    fn country(reader: &Reader<Vec<u8>>, ip: &str) -> Option<String> {
        reader
            .lookup(ip.parse().expect("ip"))
            .expect("lookup")
            .decode_path(&path!["country", "iso_code"])
            .expect("decode")
    }

    #[test]
    fn the_fixture_reads_back_with_the_maxminddb_crate() {
        let file = country_mmdb(&[
            ("192.0.2.0/24", "FR"),
            ("198.51.100.0/25", "DE"),
            ("2001:db8::/32", "JP"),
            ("203.0.113.128/25", "FR"),
        ])
        .expect("fixture");
        let reader = Reader::from_source(file).expect("a valid database");
        reader.verify().expect("passes the crate's strict verifier");
        assert_eq!(reader.metadata().ip_version, 6);
        assert_eq!(reader.metadata().database_type, "KalTalk-Test-Country");

        assert_eq!(country(&reader, "192.0.2.77").as_deref(), Some("FR"));
        assert_eq!(country(&reader, "203.0.113.200").as_deref(), Some("FR"));
        assert_eq!(country(&reader, "198.51.100.1").as_deref(), Some("DE"));
        assert_eq!(country(&reader, "2001:db8:1::5").as_deref(), Some("JP"));
        assert_eq!(
            country(&reader, "198.51.100.200"),
            None,
            "next to a network"
        );
        assert_eq!(country(&reader, "203.0.113.9"), None);
        assert_eq!(country(&reader, "2a01:4f8::1"), None);

        let hit = reader
            .lookup("198.51.100.9".parse().expect("ip"))
            .expect("lookup");
        assert_eq!(
            hit.network().expect("network").to_string(),
            "198.51.100.0/25"
        );
    }

    #[test]
    fn overlapping_or_malformed_networks_are_refused() {
        assert!(country_mmdb(&[("192.0.2.0/24", "FR"), ("192.0.2.0/25", "DE")]).is_err());
        assert!(country_mmdb(&[("192.0.2.0/25", "FR"), ("192.0.2.0/24", "DE")]).is_err());
        assert!(country_mmdb(&[("192.0.2.0", "FR")]).is_err());
        assert!(country_mmdb(&[("192.0.2.0/33", "FR")]).is_err());
    }
}
