//! The one guard against server-side request forgery (SSRF) for requests to user-chosen URLs:
//! webhooks now, knowledge-base fetches later. Every outbound request to such a URL goes through
//! this module, so the rules about what the server may contact live in one place.
//!
//! It is responsible for:
//! - [`check_url`]: whether a URL may be a target at all (https only, no credentials, no IP literal
//!   or `localhost` host that points inside the network). Run it when the URL is stored and again
//!   right before each send, because the HTTP client never resolves IP-literal hosts, so this check
//!   is the only thing standing between an IP literal and the connection.
//! - [`GuardedResolver`]: the same address rules applied after DNS, at connection time, so a name
//!   that resolves to an internal address (or re-resolves to one later: DNS rebinding) is refused.
//! - [`client`]: the HTTP client for untrusted targets, wired to that resolver and refusing to
//!   follow redirects or use proxies, either of which would reach targets no check ever saw.
//!
//! The address rules ([`is_forbidden`]) refuse everything that is not ordinary public unicast:
//! private, loopback, link-local (cloud metadata lives there), CGNAT, multicast, reserved,
//! documentation and benchmarking ranges, and IPv6 forms that embed such an IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What outbound targets are allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetPolicy {
    /// Development and tests only: allow plain `http://` to loopback hosts and loopback addresses.
    pub allow_loopback: bool,
}

/// Why a target was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// The text is not an absolute URL.
    #[error("not a valid URL: {reason}")]
    InvalidUrl { reason: String },
    /// Anything but `https` (or `http` to loopback, when the policy allows loopback).
    #[error("only https:// URLs are accepted (got {scheme}://)")]
    SchemeNotAllowed { scheme: String },
    /// The URL has no host to contact.
    #[error("the URL has no host")]
    MissingHost,
    /// The URL carries `user:pass@`.
    #[error("URLs with a user name or password (user:pass@{host}) are not accepted")]
    Credentials { host: String },
    /// An IP-literal host in a forbidden range.
    #[error("{addr} is a private, loopback, link-local or otherwise reserved address and may not be contacted")]
    ForbiddenAddress { addr: IpAddr },
    /// `localhost` or a name under `.localhost`.
    #[error("{host} is a loopback host name and may not be contacted")]
    ForbiddenHost { host: String },
    /// Name resolution failed.
    #[error("could not resolve {host}: {reason}")]
    ResolveFailed { host: String, reason: String },
    /// Every address the name resolved to is forbidden (or it resolved to none).
    #[error("{}", describe_refused(.host, .refused))]
    NoAllowedAddress { host: String, refused: Vec<IpAddr> },
}

fn describe_refused(host: &str, refused: &[IpAddr]) -> String {
    if refused.is_empty() {
        return format!("{host} did not resolve to any address");
    }
    let list = refused.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ");
    format!("{host} resolves only to addresses that may not be contacted: {list}")
}

/// IPv4 networks never contacted, whatever the policy. Loopback is handled apart because the
/// policy can allow it.
const V4_FORBIDDEN: &[(Ipv4Addr, u8)] = &[
    // "This network"; 0.0.0.0 itself reaches the local host on Linux.
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    // Carrier-grade NAT: internal to the provider, often to the hosting network itself.
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    // Link-local, where cloud metadata services (169.254.169.254) hand out credentials.
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    // Multicast, then reserved up to and including the broadcast address.
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// IPv6 networks never contacted. Loopback, the unspecified address and the forms that embed an
/// IPv4 address are handled apart.
const V6_FORBIDDEN: &[(Ipv6Addr, u8)] = &[
    // Discard-only.
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
    // Local-use NAT64 (RFC 8215): where the IPv4 address sits is up to the operator, so it cannot
    // be checked; being local by definition, it is refused outright.
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    // Unique local, the IPv6 counterpart of the private IPv4 ranges.
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
    // Site-local is deprecated but still routed by some internal networks.
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
];

const NAT64_PREFIX: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
const SIX_TO_FOUR_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0);

fn v4_in(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    ip.to_bits() & mask == net.to_bits() & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    ip.to_bits() & mask == net.to_bits() & mask
}

fn v4_forbidden(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return !allow_loopback;
    }
    V4_FORBIDDEN.iter().any(|&(net, prefix)| v4_in(ip, net, prefix))
}

fn v6_forbidden(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    // Before the IPv4-compatible rule below, which would read ::1 as 0.0.0.1.
    if ip == Ipv6Addr::LOCALHOST {
        return !allow_loopback;
    }
    // The kernel sends ::ffff:a.b.c.d to a.b.c.d itself, so it is exactly as dangerous (and, for
    // 127/8, exactly as much loopback) as the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_forbidden(v4, allow_loopback);
    }
    let bits = ip.to_bits();
    // The remaining embedding forms reach their IPv4 address through a tunnel or a translator,
    // never this host's loopback, so the loopback allowance does not extend to them.
    // IPv4-compatible (::a.b.c.d, deprecated), which also covers the unspecified address ::.
    if bits >> 32 == 0 {
        return v4_forbidden(Ipv4Addr::from_bits(bits as u32), false);
    }
    if v6_in(ip, NAT64_PREFIX, 96) {
        return v4_forbidden(Ipv4Addr::from_bits(bits as u32), false);
    }
    if v6_in(ip, SIX_TO_FOUR_PREFIX, 16) {
        return v4_forbidden(Ipv4Addr::from_bits((bits >> 80) as u32), false);
    }
    V6_FORBIDDEN.iter().any(|&(net, prefix)| v6_in(ip, net, prefix))
}

/// Whether an address must never be contacted under this policy.
pub fn is_forbidden(ip: IpAddr, policy: TargetPolicy) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4, policy.allow_loopback),
        IpAddr::V6(v6) => v6_forbidden(v6, policy.allow_loopback),
    }
}

/// Exactly the addresses [`TargetPolicy::allow_loopback`] lets through.
fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// A URL host, classified by what the guard needs to know about it.
enum TargetHost {
    Ip(IpAddr),
    LoopbackName,
    Name,
}

impl TargetHost {
    /// `host` as given by [`reqwest::Url::host_str`]: IPv6 in brackets, IPv4 already normalised
    /// to dotted decimal (so `0x7f.1` arrives as `127.0.0.1`), names lowercased.
    fn classify(host: &str) -> Self {
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if let Ok(ip) = v6.parse::<Ipv6Addr>() {
                return TargetHost::Ip(IpAddr::V6(ip));
            }
        }
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return TargetHost::Ip(IpAddr::V4(ip));
        }
        // A trailing dot names the same host; resolvers map all of *.localhost to loopback
        // (RFC 6761), so the whole tree is treated as loopback without asking one.
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            TargetHost::LoopbackName
        } else {
            TargetHost::Name
        }
    }

    fn is_loopback(&self) -> bool {
        match self {
            TargetHost::Ip(ip) => is_loopback_ip(*ip),
            TargetHost::LoopbackName => true,
            TargetHost::Name => false,
        }
    }
}

/// Validates a target URL; call it when the URL is stored and again before each send.
///
/// Accepts `https` URLs, and `http` only to a loopback host when the policy allows loopback. The
/// URL must have a host and no `user:pass@`. An IP-literal host is checked with [`is_forbidden`];
/// `localhost` and `*.localhost` count as loopback. Names are checked at connection time by
/// [`GuardedResolver`].
pub fn check_url(url: &str, policy: TargetPolicy) -> Result<reqwest::Url, TargetError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| TargetError::InvalidUrl { reason: e.to_string() })?;
    let scheme = parsed.scheme();
    if scheme != "https" && scheme != "http" {
        return Err(TargetError::SchemeNotAllowed { scheme: scheme.to_owned() });
    }
    let host_str = parsed.host_str().filter(|h| !h.is_empty()).ok_or(TargetError::MissingHost)?;
    // Credentials in a URL end up in logs and in the Authorization header of every request, and
    // `user@` is a classic way to make a URL look like it points somewhere it doesn't.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(TargetError::Credentials { host: host_str.to_owned() });
    }
    let host = TargetHost::classify(host_str);
    if scheme == "http" && !(policy.allow_loopback && host.is_loopback()) {
        return Err(TargetError::SchemeNotAllowed { scheme: scheme.to_owned() });
    }
    match host {
        TargetHost::Ip(addr) if is_forbidden(addr, policy) => Err(TargetError::ForbiddenAddress { addr }),
        TargetHost::LoopbackName if !policy.allow_loopback => {
            Err(TargetError::ForbiddenHost { host: host_str.to_owned() })
        }
        _ => Ok(parsed),
    }
}

/// A reqwest DNS resolver that resolves with the system resolver and drops forbidden addresses.
///
/// Filtering here, rather than resolving once up front, means the check applies to the very
/// addresses the connection uses, which is what defeats DNS rebinding.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl GuardedResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: TargetPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = resolve_allowed(&host, policy).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

async fn resolve_allowed(host: &str, policy: TargetPolicy) -> Result<Vec<SocketAddr>, TargetError> {
    // Port 0: reqwest substitutes the URL's port.
    let resolved = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| TargetError::ResolveFailed { host: host.to_owned(), reason: e.to_string() })?;
    let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
        resolved.partition(|addr| !is_forbidden(addr.ip(), policy));
    let refused: Vec<IpAddr> = refused.iter().map(SocketAddr::ip).collect();
    if allowed.is_empty() {
        return Err(TargetError::NoAllowedAddress { host: host.to_owned(), refused });
    }
    if !refused.is_empty() {
        tracing::debug!(host, ?refused, "dropped forbidden addresses from DNS answer");
    }
    Ok(allowed)
}

/// An HTTP client for untrusted targets: no redirects, the [`GuardedResolver`], no proxy, the
/// given total timeout, and the user agent `frontdesk-webhooks/<version>`.
///
/// It does not check IP-literal hosts (reqwest never resolves those): pass every URL through
/// [`check_url`] before sending.
pub fn client(policy: TargetPolicy, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        // A redirect is a new target chosen by the remote side, which check_url never saw.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        // Through a proxy (e.g. from HTTPS_PROXY) the proxy resolves the target name and our
        // resolver only ever sees the proxy's name, so the guard would silently stop applying.
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("frontdesk-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        // Only a TLS backend that fails to initialise makes this fail; rustls with bundled roots
        // does not, so failing here is a build problem, not a runtime condition.
        .expect("building the webhook HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const STRICT: TargetPolicy = TargetPolicy { allow_loopback: false };
    const LOOPBACK: TargetPolicy = TargetPolicy { allow_loopback: true };

    #[test]
    fn addresses_are_judged_by_category() {
        // (address, forbidden by default, forbidden with allow_loopback)
        let table: &[(&str, bool, bool)] = &[
            // Public.
            ("8.8.8.8", false, false),
            ("1.1.1.1", false, false),
            ("93.184.216.34", false, false),
            ("172.15.255.255", false, false),
            ("172.32.0.0", false, false),
            ("100.63.255.255", false, false),
            ("100.128.0.0", false, false),
            ("198.17.255.255", false, false),
            ("198.20.0.0", false, false),
            ("223.255.255.255", false, false),
            ("2606:4700:4700::1111", false, false),
            ("2a00:1450:4001:82b::200e", false, false),
            ("::ffff:8.8.8.8", false, false),
            ("64:ff9b::808:808", false, false),
            ("2002:808:808::", false, false),
            ("2002:808:a00::1", false, false),
            // IPv4 loopback.
            ("127.0.0.1", true, false),
            ("127.255.255.254", true, false),
            // IPv4 never.
            ("0.0.0.0", true, true),
            ("0.1.2.3", true, true),
            ("10.0.0.1", true, true),
            ("10.255.255.255", true, true),
            ("172.16.0.1", true, true),
            ("172.31.255.255", true, true),
            ("192.168.1.1", true, true),
            ("169.254.169.254", true, true),
            ("169.254.0.1", true, true),
            ("100.64.0.1", true, true),
            ("100.127.255.255", true, true),
            ("224.0.0.1", true, true),
            ("239.255.255.250", true, true),
            ("240.0.0.1", true, true),
            ("255.255.255.255", true, true),
            ("198.18.0.1", true, true),
            ("198.19.255.255", true, true),
            ("192.0.0.8", true, true),
            ("192.0.2.1", true, true),
            ("198.51.100.7", true, true),
            ("203.0.113.9", true, true),
            // IPv6 loopback.
            ("::1", true, false),
            ("::ffff:127.0.0.1", true, false),
            // IPv6 never.
            ("::", true, true),
            ("fe80::1", true, true),
            ("febf:ffff::1", true, true),
            ("fec0::1", true, true),
            ("fc00::1", true, true),
            ("fd12:3456::1", true, true),
            ("ff02::1", true, true),
            ("ff05::1:3", true, true),
            ("2001:db8::1", true, true),
            ("100::1", true, true),
            ("64:ff9b:1::a00:1", true, true),
            // IPv6 embedding a forbidden IPv4 address.
            ("::ffff:10.0.0.1", true, true),
            ("::ffff:169.254.169.254", true, true),
            ("::ffff:0.0.0.0", true, true),
            ("::10.0.0.1", true, true),
            ("::127.0.0.1", true, true),
            ("64:ff9b::a00:1", true, true),
            ("64:ff9b::7f00:1", true, true),
            ("64:ff9b::a9fe:a9fe", true, true),
            ("2002:a00:1::", true, true),
            ("2002:a9fe:a9fe::1", true, true),
            ("2002:7f00:1::", true, true),
            ("2002:c0a8:101:808::", true, true),
        ];
        for &(text, strict, loopback) in table {
            let ip = IpAddr::from_str(text).unwrap();
            assert_eq!(is_forbidden(ip, STRICT), strict, "{text} without allow_loopback");
            assert_eq!(is_forbidden(ip, LOOPBACK), loopback, "{text} with allow_loopback");
        }
    }

    #[test]
    fn public_https_urls_are_accepted() {
        for url in ["https://example.com/hook", "https://8.8.8.8/x", "https://[2606:4700:4700::1111]:8443/x?a=b"] {
            let parsed = check_url(url, STRICT).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.as_str(), url);
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback_when_allowed() {
        let err = check_url("http://example.com/", STRICT).unwrap_err();
        assert_eq!(err, TargetError::SchemeNotAllowed { scheme: "http".into() });
        assert!(err.to_string().contains("only https:// URLs are accepted"), "{err}");
        assert!(check_url("http://example.com/", LOOPBACK).is_err());

        for url in [
            "http://127.0.0.1:8080/x",
            "http://localhost:1/",
            "http://[::1]:9/",
            "http://[::ffff:127.0.0.1]:9/",
            "http://api.localhost./",
        ] {
            assert!(check_url(url, STRICT).is_err(), "{url} without allow_loopback");
            let parsed = check_url(url, LOOPBACK).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.scheme(), "http");
        }
        // Loopback https is refused for the loopback, not the scheme.
        assert_eq!(
            check_url("https://localhost/", STRICT),
            Err(TargetError::ForbiddenHost { host: "localhost".into() })
        );
        assert!(check_url("https://localhost/", LOOPBACK).is_ok());
    }

    #[test]
    fn allow_loopback_does_not_open_private_ranges() {
        assert!(check_url("http://10.0.0.1/", LOOPBACK).is_err());
        assert_eq!(
            check_url("https://10.0.0.1/", LOOPBACK),
            Err(TargetError::ForbiddenAddress { addr: "10.0.0.1".parse().unwrap() })
        );
        assert!(check_url("http://192.168.0.1:8080/", LOOPBACK).is_err());
    }

    #[test]
    fn forbidden_ip_literals_are_refused_in_any_spelling() {
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        let err = check_url("https://169.254.169.254/latest", STRICT).unwrap_err();
        assert_eq!(err, TargetError::ForbiddenAddress { addr: metadata });
        assert!(err.to_string().contains("169.254.169.254"), "{err}");

        // The URL parser normalises the short, hex and integer spellings of IPv4 addresses.
        for url in ["https://0xa9fea9fe/", "https://2852039166/", "https://169.254.43518/"] {
            assert_eq!(check_url(url, LOOPBACK), Err(TargetError::ForbiddenAddress { addr: metadata }), "{url}");
        }
        assert!(check_url("https://0x7f.1/", STRICT).is_err());

        let err = check_url("https://[::ffff:169.254.169.254]/", LOOPBACK).unwrap_err();
        assert!(matches!(err, TargetError::ForbiddenAddress { addr: IpAddr::V6(_) }), "{err:?}");
        assert!(check_url("https://[fd00::1]/", LOOPBACK).is_err());
        assert!(check_url("https://[64:ff9b::a00:1]/", STRICT).is_err());
    }

    #[test]
    fn credentials_are_refused() {
        let err = check_url("https://user:pw@example.com/", STRICT).unwrap_err();
        assert_eq!(err, TargetError::Credentials { host: "example.com".into() });
        assert!(err.to_string().contains("example.com"), "{err}");
        assert!(check_url("https://user@example.com/", STRICT).is_err());
        assert!(check_url("https://:pw@example.com/", STRICT).is_err());
    }

    #[test]
    fn other_schemes_and_non_urls_are_refused() {
        assert_eq!(
            check_url("ftp://example.com/file", LOOPBACK),
            Err(TargetError::SchemeNotAllowed { scheme: "ftp".into() })
        );
        assert!(check_url("file:///etc/passwd", LOOPBACK).is_err());
        assert!(check_url("gopher://localhost:6379/", LOOPBACK).is_err());
        assert!(matches!(check_url("not a url", LOOPBACK), Err(TargetError::InvalidUrl { .. })));
        assert!(matches!(check_url("", LOOPBACK), Err(TargetError::InvalidUrl { .. })));
        assert!(check_url("https://", LOOPBACK).is_err());
    }

    fn name(host: &str) -> Name {
        Name::from_str(host).unwrap()
    }

    #[tokio::test]
    async fn resolver_refuses_loopback_names_without_allow_loopback() {
        let err = match GuardedResolver::new(STRICT).resolve(name("localhost")).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert!(err.to_string().contains("localhost"), "{err}");
        match err.downcast_ref::<TargetError>() {
            Some(TargetError::NoAllowedAddress { host, refused }) => {
                assert_eq!(host, "localhost");
                assert!(!refused.is_empty());
                assert!(refused.iter().all(|ip| ip.is_loopback()), "{refused:?}");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[tokio::test]
    async fn resolver_returns_only_loopback_with_allow_loopback() {
        let addrs: Vec<SocketAddr> = match GuardedResolver::new(LOOPBACK).resolve(name("localhost")).await {
            Ok(addrs) => addrs.collect(),
            Err(err) => panic!("{err}"),
        };
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|addr| addr.ip().is_loopback()), "{addrs:?}");
    }

    /// Serves one connection with a redirect to the metadata address and returns the request head.
    async fn redirecting_server() -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "connection closed mid-request");
                head.extend_from_slice(&buf[..n]);
            }
            let response = "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\n\
                            Content-Length: 0\r\nConnection: close\r\n\r\n";
            socket.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn client_uses_the_guard_and_never_follows_redirects() {
        let (port, server) = redirecting_server().await;
        let url = format!("http://localhost:{port}/hook");

        let err = client(STRICT, Duration::from_secs(5)).get(&url).send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");

        let response = client(LOOPBACK, Duration::from_secs(5)).get(&url).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        assert_eq!(response.url().as_str(), url);
        let head = server.await.unwrap().to_ascii_lowercase();
        let agent = format!("user-agent: frontdesk-webhooks/{}\r\n", env!("CARGO_PKG_VERSION"));
        assert!(head.contains(&agent), "{head}");
    }
}
