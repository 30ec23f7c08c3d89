//! Host names to addresses without glibc's resolver: an IP literal as it is, else
//! `/etc/hosts`, else DNS through the nameservers of `/etc/resolv.conf` (A and AAAA
//! over UDP, TCP when the answer is truncated; `search`, `ndots`, `timeout` and
//! `attempts` as resolv.conf(5) defines them).
//!
//! Why by hand: `getaddrinfo` drags glibc's NSS, its DNS code and `dlopen` into a
//! statically linked binary (about 160 KB of bosun's FROM-scratch layer), and in a
//! scratch image there is no `nsswitch.conf` to configure it anyway. bosun only ever
//! needs a health-check host and the ECS agent: plain A/AAAA lookups. Names that only
//! NSS modules know (LDAP, mDNS) are not found. (`bosun-aws` keeps glibc's resolver:
//! the SDK's credential chain calls it in any case.)

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const HOSTS: &str = "/etc/hosts";
const RESOLV_CONF: &str = "/etc/resolv.conf";
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// The bound on a lookup where the caller has none of its own (resolv.conf's default
/// timeout for one round).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// `host:port` or `[v6]:port` to the addresses to try, in order.
pub fn resolve(authority: &str, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    let (host, port) = split_authority(authority)?;
    Ok(with_port(lookup(host, timeout)?, port))
}

/// [`resolve`] on tokio: literals at once, names on the blocking pool.
pub async fn resolve_async(authority: &str, timeout: Duration) -> io::Result<Vec<SocketAddr>> {
    let (host, port) = split_authority(authority)?;
    let ips = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let host = host.to_owned();
            tokio::task::spawn_blocking(move || lookup(&host, timeout))
                .await
                .map_err(io::Error::other)??
        }
    };
    Ok(with_port(ips, port))
}

fn with_port(ips: Vec<IpAddr>, port: u16) -> Vec<SocketAddr> {
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

/// Connect to `host:port`, trying each of its addresses in turn.
pub async fn connect(authority: &str, timeout: Duration) -> io::Result<tokio::net::TcpStream> {
    let mut last = None;
    for addr in resolve_async(authority, timeout).await? {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(io::Error::new(e.kind(), format!("{addr}: {e}"))),
        }
    }
    Err(last.unwrap_or_else(|| no_address(authority)))
}

/// [`connect`] with a blocking socket, lookup and connects all within `timeout`; the
/// address it reached, and the stream.
pub fn connect_blocking(authority: &str, timeout: Duration) -> io::Result<(SocketAddr, TcpStream)> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    for addr in resolve(authority, timeout)? {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok((addr, stream)),
            Err(e) => last = Some(io::Error::new(e.kind(), format!("{addr}: {e}"))),
        }
    }
    Err(last.unwrap_or_else(|| no_address(authority)))
}

fn no_address(authority: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{authority}: no address"))
}

/// The addresses of `host`, IPv4 first: a literal, `/etc/hosts`, then DNS.
fn lookup(host: &str, timeout: Duration) -> io::Result<Vec<IpAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let hosts = std::fs::read_to_string(HOSTS).unwrap_or_default();
    let found = hosts_lookup(&hosts, host);
    if !found.is_empty() {
        return Ok(found);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);
    }
    let conf = Conf::parse(&std::fs::read_to_string(RESOLV_CONF).unwrap_or_default());
    conf.lookup(host, Instant::now() + timeout)
        .map_err(|e| io::Error::new(e.kind(), format!("{host}: {e}")))
}

fn split_authority(authority: &str) -> io::Result<(&str, u16)> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{authority}' is not HOST:PORT"),
        )
    };
    let (host, port) = authority.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse().map_err(|_| invalid())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid());
    }
    Ok((host, port))
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "name not found (/etc/hosts, DNS)")
}

/// Every address `/etc/hosts` gives `name` (case-insensitive), IPv4 first.
fn hosts_lookup(hosts: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    let mut found: Vec<IpAddr> = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if fields.any(|n| n.eq_ignore_ascii_case(name)) && !found.contains(&ip) {
            found.push(ip);
        }
    }
    found.sort_by_key(IpAddr::is_ipv6);
    found
}

/// What resolv.conf says (glibc's defaults where it is silent or missing).
#[derive(Debug, Clone, PartialEq)]
struct Conf {
    servers: Vec<SocketAddr>,
    search: Vec<String>,
    ndots: usize,
    timeout: Duration,
    attempts: u32,
}

impl Conf {
    fn parse(text: &str) -> Conf {
        let mut conf = Conf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => {
                    // glibc uses the first three.
                    if let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) {
                        if conf.servers.len() < 3 {
                            conf.servers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                // The last of `search` and `domain` wins.
                Some("search") | Some("domain") => {
                    conf.search = fields.map(|d| d.trim_end_matches('.').to_owned()).collect();
                }
                Some("options") => {
                    for opt in fields {
                        let (key, value) = opt.split_once(':').unwrap_or((opt, ""));
                        let n = value.parse::<u32>();
                        match (key, n) {
                            ("ndots", Ok(n)) => conf.ndots = n.min(15) as usize,
                            ("timeout", Ok(n)) => {
                                conf.timeout = Duration::from_secs(n.clamp(1, 30).into())
                            }
                            ("attempts", Ok(n)) => conf.attempts = n.clamp(1, 5),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers
                .push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 53));
        }
        conf
    }

    /// The names to ask for, in order (resolv.conf(5): `ndots` and `search`).
    fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_owned()];
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_owned()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_owned())).collect()
        }
    }

    fn lookup(&self, name: &str, deadline: Instant) -> io::Result<Vec<IpAddr>> {
        let mut last_error = None;
        for candidate in self.candidates(name) {
            match self.ask(&candidate, deadline) {
                Ok(addrs) if !addrs.is_empty() => return Ok(addrs),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(e),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(not_found))
    }

    /// One name, every server in turn for `attempts` rounds: its A and AAAA records
    /// (empty when it does not exist or has none).
    fn ask(&self, name: &str, deadline: Instant) -> io::Result<Vec<IpAddr>> {
        let queries = [query(name, TYPE_A)?, query(name, TYPE_AAAA)?];
        let mut last_error = None;
        for _ in 0..self.attempts {
            for server in &self.servers {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(last_error.unwrap_or_else(timed_out));
                }
                match exchange(*server, &queries, self.timeout.min(left)) {
                    Ok(addrs) => return Ok(addrs),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        Err(last_error.unwrap_or_else(timed_out))
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no answer from the nameservers")
}

/// What one reply says.
#[derive(Debug, PartialEq)]
enum Reply {
    /// The records of the type asked for (none: the name has none of this type).
    Records(Vec<IpAddr>),
    /// NXDOMAIN: the name does not exist.
    NoName,
    /// Truncated: ask again over TCP.
    Truncated,
    /// SERVFAIL, REFUSED and the like: ask another server.
    Failed(u8),
}

/// Send both queries to `server` over UDP (TCP for a truncated reply) and wait for both
/// replies; the addresses they hold, IPv4 first.
fn exchange(
    server: SocketAddr,
    queries: &[Vec<u8>; 2],
    timeout: Duration,
) -> io::Result<Vec<IpAddr>> {
    let deadline = Instant::now() + timeout;
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    // Connected: the kernel drops datagrams from anyone but the server.
    socket.connect(server)?;
    for q in queries {
        socket.send(q)?;
    }
    let mut replies: [Option<Reply>; 2] = [None, None];
    let mut buf = [0u8; 1232];
    while replies.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from nameserver {server}"),
            ));
        }
        socket.set_read_timeout(Some(left))?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("nameserver {server}: {e}"),
                ))
            }
        };
        for (i, q) in queries.iter().enumerate() {
            if replies[i].is_none() {
                if let Some(reply) = parse(q, &buf[..n]) {
                    replies[i] = Some(reply);
                }
            }
        }
        // A name that does not exist has no records of the other type either.
        if replies.contains(&Some(Reply::NoName)) {
            return Ok(Vec::new());
        }
    }
    let mut addrs = Vec::new();
    for (i, reply) in replies.into_iter().enumerate() {
        let reply = match reply {
            Some(Reply::Truncated) => tcp_exchange(server, &queries[i], deadline)?,
            Some(r) => r,
            None => unreachable!("the loop ends when every reply is in"),
        };
        match reply {
            Reply::Records(mut found) => addrs.append(&mut found),
            Reply::NoName => return Ok(Vec::new()),
            Reply::Truncated => {}
            Reply::Failed(rcode) => {
                return Err(io::Error::other(format!(
                    "nameserver {server} answered with error code {rcode}"
                )))
            }
        }
    }
    addrs.sort_by_key(IpAddr::is_ipv6);
    Ok(addrs)
}

/// One query over TCP (RFC 7766: each message behind a two-byte length).
fn tcp_exchange(server: SocketAddr, q: &[u8], deadline: Instant) -> io::Result<Reply> {
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer from nameserver {server} over TCP"),
            ))
        } else {
            Ok(left)
        }
    };
    let mut stream = TcpStream::connect_timeout(&server, left()?)?;
    stream.set_write_timeout(Some(left()?))?;
    let mut message = (q.len() as u16).to_be_bytes().to_vec();
    message.extend_from_slice(q);
    stream.write_all(&message)?;
    stream.set_read_timeout(Some(left()?))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut reply = vec![0u8; u16::from_be_bytes(len).into()];
    stream.read_exact(&mut reply)?;
    match parse(q, &reply) {
        Some(Reply::Truncated) | None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("nameserver {server}: unusable answer over TCP"),
        )),
        Some(r) => Ok(r),
    }
}

/// A recursive query for `name`'s records of type `qtype`, with a random id.
fn query(name: &str, qtype: u16) -> io::Result<Vec<u8>> {
    let invalid = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{name}' is not a valid host name"),
        )
    };
    if name.is_empty() || name.len() > 253 {
        return Err(invalid());
    }
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&random_id().to_be_bytes());
    // Flags: RD (recursion desired); one question.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid());
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // class IN
    Ok(q)
}

fn random_id() -> u16 {
    let mut id = [0u8; 2];
    // SAFETY: getrandom writes at most `id.len()` bytes into the buffer it is given.
    let n = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    if n != 2 {
        // No entropy (very old kernel): the clock is better than a constant.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos as u16 ^ std::process::id() as u16;
    }
    u16::from_ne_bytes(id)
}

/// For the fuzzer (`fuzz/`, built with `--cfg fuzzing`): parse `msg` as the reply to
/// a query for `example.com` of the type its first byte picks. The query's id (and,
/// when the input is long enough, its question) are written over the input, so that the
/// fuzzer gets past the id and question checks to the answer records.
#[cfg(fuzzing)]
pub fn fuzz_reply(input: &[u8]) {
    let Some((&pick, rest)) = input.split_first() else {
        return;
    };
    let qtype = if pick & 1 == 0 { TYPE_A } else { TYPE_AAAA };
    let Ok(q) = query("example.com", qtype) else {
        return;
    };
    let mut msg = rest.to_vec();
    if msg.len() >= 2 {
        msg[..2].copy_from_slice(&q[..2]);
    }
    if pick & 2 != 0 && msg.len() >= q.len() {
        msg[12..q.len()].copy_from_slice(&q[12..]);
    }
    let _ = parse(&q, &msg);
}

/// The reply to query `q` in `msg`, or `None` when `msg` is not that reply (another
/// id or question, not a response, malformed).
fn parse(q: &[u8], msg: &[u8]) -> Option<Reply> {
    let u16_at = |at: usize| Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]));
    if msg.get(..2)? != &q[..2] {
        return None;
    }
    let flags = u16_at(2)?;
    if flags & 0x8000 == 0 {
        return None;
    }
    let question = &q[12..];
    let qdcount = u16_at(4)?;
    if qdcount != 1
        || !msg
            .get(12..12 + question.len())?
            .eq_ignore_ascii_case(question)
    {
        return None;
    }
    if flags & 0x0200 != 0 {
        return Some(Reply::Truncated);
    }
    match (flags & 0x000f) as u8 {
        0 => {}
        3 => return Some(Reply::NoName),
        rcode => return Some(Reply::Failed(rcode)),
    }
    let qtype = u16::from_be_bytes([q[q.len() - 4], q[q.len() - 3]]);
    let ancount = u16_at(6)?;
    let mut at = 12 + question.len();
    let mut records = Vec::new();
    for _ in 0..ancount {
        at = skip_name(msg, at)?;
        let (rtype, class, len) = (u16_at(at)?, u16_at(at + 2)?, usize::from(u16_at(at + 8)?));
        let data = msg.get(at + 10..at + 10 + len)?;
        at += 10 + len;
        // CNAMEs lead to the records that follow them; only the addresses matter.
        if class != 1 || rtype != qtype {
            continue;
        }
        match (rtype, data.len()) {
            (TYPE_A, 4) => records.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (TYPE_AAAA, 16) => records.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => return None,
        }
    }
    Some(Reply::Records(records))
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return msg.get(at + 1).map(|_| at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn hosts_file_gives_every_address_ipv4_first() {
        let hosts = "# comment\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n\
                     10.0.0.7\tdb DB.internal # the database\n10.0.0.8 db\nnot-an-ip db\n";
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            hosts_lookup(hosts, "localhost"),
            [v4("127.0.0.1"), v4("::1")]
        );
        assert_eq!(hosts_lookup(hosts, "db"), [v4("10.0.0.7"), v4("10.0.0.8")]);
        assert_eq!(hosts_lookup(hosts, "db.INTERNAL."), [v4("10.0.0.7")]);
        assert!(hosts_lookup(hosts, "comment").is_empty());
        assert!(hosts_lookup(hosts, "database").is_empty());
    }

    #[test]
    fn resolv_conf_and_search_order() {
        let conf = Conf::parse(
            "nameserver 10.0.0.2\nnameserver fd00::2\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n\
             domain ignored.example\nsearch svc.local corp.example.\noptions ndots:2 timeout:1 attempts:3 rotate\n",
        );
        assert_eq!(conf.servers.len(), 3);
        assert_eq!(conf.servers[1], "[fd00::2]:53".parse().unwrap());
        assert_eq!(conf.search, ["svc.local", "corp.example"]);
        assert_eq!(
            (conf.ndots, conf.timeout, conf.attempts),
            (2, Duration::from_secs(1), 3)
        );
        assert_eq!(
            conf.candidates("db"),
            ["db.svc.local", "db.corp.example", "db"]
        );
        assert_eq!(
            conf.candidates("a.b.c"),
            ["a.b.c", "a.b.c.svc.local", "a.b.c.corp.example"]
        );
        assert_eq!(conf.candidates("db."), ["db"]);
        let empty = Conf::parse("");
        assert_eq!(empty.servers, ["127.0.0.1:53".parse().unwrap()]);
        assert_eq!((empty.ndots, empty.attempts), (1, 2));
    }

    #[test]
    fn bad_names_and_authorities_are_refused() {
        assert!(query("", TYPE_A).is_err());
        assert!(query("a..b", TYPE_A).is_err());
        assert!(query(&"x".repeat(64), TYPE_A).is_err());
        assert!(split_authority("nohost").is_err());
        assert!(split_authority(":80").is_err());
        assert!(split_authority("h:99999").is_err());
        assert_eq!(split_authority("[::1]:80").unwrap(), ("::1", 80));
        assert_eq!(
            resolve("127.0.0.1:9", Duration::from_secs(1)).unwrap(),
            ["127.0.0.1:9".parse().unwrap()]
        );
    }

    /// A reply to `q`: `rcode`, the TC bit, and answers (a CNAME first, compressed
    /// against the question, then each address).
    fn answer(q: &[u8], rcode: u8, truncated: bool, addrs: &[IpAddr]) -> Vec<u8> {
        let mut r = q[..2].to_vec();
        let flags: u16 = 0x8180 | u16::from(rcode) | if truncated { 0x0200 } else { 0 };
        r.extend_from_slice(&flags.to_be_bytes());
        r.extend_from_slice(&[0, 1]);
        r.extend_from_slice(&(addrs.len() as u16 + 1).to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(&q[12..]);
        // CNAME: owner = the question name (pointer to offset 12), target "real" + pointer.
        r.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4]);
        r.extend_from_slice(b"real");
        r.extend_from_slice(&[0xc0, 12]);
        for a in addrs {
            let (rtype, data) = match a {
                IpAddr::V4(v4) => (TYPE_A, v4.octets().to_vec()),
                IpAddr::V6(v6) => (TYPE_AAAA, v6.octets().to_vec()),
            };
            r.extend_from_slice(&[0xc0, 12]);
            r.extend_from_slice(&rtype.to_be_bytes());
            r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            r.extend_from_slice(&(data.len() as u16).to_be_bytes());
            r.extend_from_slice(&data);
        }
        r
    }

    /// A nameserver on 127.0.0.1 answering with `respond(name, qtype, query)`, UDP and
    /// TCP on the same port; it stops with the test process.
    fn nameserver(
        respond: impl Fn(&str, u16, &[u8], bool) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> SocketAddr {
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let respond = std::sync::Arc::new(respond);
        let decode = |q: &[u8]| {
            let mut at = 12;
            let mut labels = Vec::new();
            while q[at] != 0 {
                let len = usize::from(q[at]);
                labels.push(String::from_utf8_lossy(&q[at + 1..at + 1 + len]).into_owned());
                at += 1 + len;
            }
            (labels.join("."), u16::from_be_bytes([q[at + 1], q[at + 2]]))
        };
        let r = respond.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let (name, qtype) = decode(&buf[..n]);
                if let Some(reply) = r(&name, qtype, &buf[..n], false) {
                    udp.send_to(&reply, from).unwrap();
                }
            }
        });
        std::thread::spawn(move || {
            for mut stream in tcp.incoming().flatten() {
                let mut len = [0u8; 2];
                stream.read_exact(&mut len).unwrap();
                let mut q = vec![0u8; u16::from_be_bytes(len).into()];
                stream.read_exact(&mut q).unwrap();
                let (name, qtype) = decode(&q);
                if let Some(reply) = respond(&name, qtype, &q, true) {
                    stream
                        .write_all(&(reply.len() as u16).to_be_bytes())
                        .unwrap();
                    stream.write_all(&reply).unwrap();
                }
            }
        });
        addr
    }

    fn conf(servers: Vec<SocketAddr>, search: &[&str]) -> Conf {
        Conf {
            servers,
            search: search.iter().map(|s| s.to_string()).collect(),
            ndots: 1,
            timeout: Duration::from_millis(300),
            attempts: 2,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn dns_follows_search_list_and_cnames() {
        let server = nameserver(|name, qtype, q, _| match (name, qtype) {
            ("peer.svc.local", _) => Some(answer(q, 3, false, &[])),
            ("peer.corp", TYPE_A) => Some(answer(q, 0, false, &[ip("10.1.2.3"), ip("10.1.2.4")])),
            ("peer.corp", TYPE_AAAA) => Some(answer(q, 0, false, &[ip("fd00::5")])),
            _ => Some(answer(q, 3, false, &[])),
        });
        let c = conf(vec![server], &["svc.local", "corp"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            c.lookup("peer", deadline).unwrap(),
            [ip("10.1.2.3"), ip("10.1.2.4"), ip("fd00::5")]
        );
        let err = c.lookup("nowhere", deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn nxdomain_for_one_type_ends_the_name_without_waiting_for_the_other() {
        // The AAAA query for the first candidate is never answered: only the NXDOMAIN
        // to its A query lets the lookup reach the second one before the deadline.
        let server = nameserver(|name, qtype, q, _| match (name, qtype) {
            ("gone.svc.local", TYPE_A) => Some(answer(q, 3, false, &[])),
            ("gone.svc.local", _) => None,
            (_, TYPE_A) => Some(answer(q, 0, false, &[ip("10.3.3.3")])),
            _ => Some(answer(q, 0, false, &[])),
        });
        let mut c = conf(vec![server], &["svc.local"]);
        c.timeout = Duration::from_secs(3);
        c.attempts = 1;
        let deadline = Instant::now() + Duration::from_secs(3);
        assert_eq!(c.lookup("gone", deadline).unwrap(), [ip("10.3.3.3")]);
    }

    #[test]
    fn truncated_answers_are_asked_again_over_tcp() {
        let server = nameserver(|_, qtype, q, tcp| match (qtype, tcp) {
            (TYPE_A, false) => Some(answer(q, 0, true, &[])),
            (TYPE_A, true) => Some(answer(q, 0, false, &[ip("10.9.9.9")])),
            _ => Some(answer(q, 0, false, &[])),
        });
        let c = conf(vec![server], &[]);
        let deadline = Instant::now() + Duration::from_secs(5);
        assert_eq!(c.lookup("big.example", deadline).unwrap(), [ip("10.9.9.9")]);
    }

    #[test]
    fn a_silent_or_failing_server_is_passed_over_and_time_is_bounded() {
        let silent = nameserver(|_, _, _, _| None);
        let failing = nameserver(|_, _, q, _| Some(answer(q, 2, false, &[])));
        let good = nameserver(|_, qtype, q, _| {
            let addrs = if qtype == TYPE_A {
                vec![ip("10.0.0.1")]
            } else {
                vec![]
            };
            Some(answer(q, 0, false, &addrs))
        });
        let c = conf(vec![silent, failing, good], &[]);
        let start = Instant::now();
        assert_eq!(
            c.lookup("x.example", start + Duration::from_secs(5))
                .unwrap(),
            [ip("10.0.0.1")]
        );
        // Only silent servers: an error, and within the deadline given.
        let c = conf(vec![silent], &[]);
        let start = Instant::now();
        let err = c
            .lookup("x.example", start + Duration::from_millis(500))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn replies_to_other_questions_are_ignored() {
        let q = query("a.example", TYPE_A).unwrap();
        let other = query("b.example", TYPE_A).unwrap();
        let mut reply = answer(&other, 0, false, &[ip("10.0.0.1")]);
        reply[..2].copy_from_slice(&q[..2]);
        assert_eq!(parse(&q, &reply), None);
        let mut not_response = answer(&q, 0, false, &[]);
        not_response[2] &= 0x7f;
        assert_eq!(parse(&q, &not_response), None);
        let good = answer(&q, 0, false, &[ip("10.0.0.1")]);
        assert_eq!(parse(&q, &good), Some(Reply::Records(vec![ip("10.0.0.1")])));
        // Cut anywhere: never a panic, never a wrong address.
        for n in 0..good.len() {
            assert_ne!(
                parse(&q, &good[..n]),
                Some(Reply::Records(vec![ip("10.0.0.1")]))
            );
        }
    }
}
