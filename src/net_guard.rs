//! The one guard against server-side request forgery (SSRF) for outbound requests: webhooks,
//! knowledge-base fetches and flows' HTTP blocks (URLs a tenant chose), and model calls (URLs the
//! operator chose, which carry the operator's keys). Every outbound request goes through this
//! module, so the rules about what the server may contact live in one place.
//!
//! It is responsible for:
//! - [`check_url`]: whether a URL may be a target at all (https unless the policy allows http, no
//!   credentials, no IP literal or `localhost` host that points inside the network). Run it when
//!   the URL is stored and again right before each send (and each redirect hop), because the HTTP
//!   client never resolves IP-literal hosts, so this check is the only thing standing between an IP
//!   literal and the connection.
//! - [`GuardedResolver`]: the same address rules applied after DNS, at connection time, so a name
//!   that resolves to an internal address (or re-resolves to one later: DNS rebinding) is refused.
//! - [`client`] / [`client_with_agent`]: the HTTP client for untrusted targets, wired to that
//!   resolver and refusing to follow redirects or use proxies, either of which would reach targets
//!   no check ever saw. Callers that want redirects follow them by hand, checking every hop.
//! - [`model_client`]: the client for the model brain, whose endpoints come only from the
//!   operator's configuration (never from a tenant, who could otherwise have the server send its
//!   key anywhere): exactly the configured host is allowed, no redirects, and a host name must
//!   resolve to a public address unless the operator allowed private ones for that endpoint.
//! - [`parse_networks`]: reading the operator's allow-list of internal networks from a setting.
//!
//! The address rules ([`is_forbidden`]) refuse everything that is not ordinary public unicast:
//! private, loopback, link-local (cloud metadata lives there), CGNAT, multicast, reserved,
//! documentation and benchmarking ranges, and IPv6 forms that embed such an IPv4 address. The only
//! ways through are the policy's explicit switches: loopback for development, and the operator's
//! [`TargetPolicy::allowed_networks`] for intranets and tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What outbound targets are allowed. The default is the strictest: public https targets only.
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Development and tests only: allow plain `http://` to loopback hosts and loopback addresses.
    pub allow_loopback: bool,
    /// Accept plain `http://` to any allowed target (knowledge fetches; webhooks stay https-only).
    pub allow_http: bool,
    /// Networks that are allowed even though they are private, loopback or otherwise reserved
    /// (intranets, tests). See [`is_forbidden`] for how IPv6 forms embedding IPv4 are treated.
    pub allowed_networks: Arc<[IpNet]>,
}

impl TargetPolicy {
    /// Whether `ip` itself, exactly as it will be connected to, lies in an allowed network.
    fn allows(&self, ip: IpAddr) -> bool {
        self.allowed_networks.iter().any(|net| net.contains(&ip))
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// The text is not an absolute URL.
    #[error("not a valid URL: {reason}")]
    InvalidUrl { reason: String },
    /// Anything but `https`, or `http` the policy does not allow (see [`check_url`]).
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
///
/// An address inside [`TargetPolicy::allowed_networks`] is always allowed. The allow-list is
/// matched against the address exactly as given, never against an IPv4 address embedded in an
/// IPv6 one (IPv4-mapped, IPv4-compatible, NAT64, 6to4): those forms are judged by the usual rules,
/// so allowing `127.0.0.1/32` does not allow `::ffff:127.0.0.1`. Allowing an embedding form takes
/// listing the IPv6 address or network itself. This keeps the allow-list exactly as wide as
/// written: an entry for one internal IPv4 host must not open a second spelling of it, or of a
/// neighbour reached through a translator the operator never thought about.
pub fn is_forbidden(ip: IpAddr, policy: TargetPolicy) -> bool {
    forbidden_under(ip, &policy)
}

/// [`is_forbidden`] by reference, for the hot paths that check many addresses against one policy.
fn forbidden_under(ip: IpAddr, policy: &TargetPolicy) -> bool {
    if policy.allows(ip) {
        return false;
    }
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4, policy.allow_loopback),
        IpAddr::V6(v6) => v6_forbidden(v6, policy.allow_loopback),
    }
}

/// Parses a comma-separated list of networks such as `127.0.0.2/32, 10.0.0.0/8, 192.168.1.5`.
///
/// A bare address means just that host (`/32` or `/128`). Host bits below the prefix are cleared,
/// so `10.1.2.3/8` reads as `10.0.0.0/8`. Empty entries (a trailing comma, an empty setting) are
/// ignored. The error names the entry that could not be read.
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{entry}` is not an IP network (like 10.0.0.0/8 or fd00::/8) or an IP address"))
        })
        .collect()
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
/// Accepts `https` URLs. Plain `http` is accepted when the policy allows http, when it allows
/// loopback and the host is loopback, or when the host is an IP literal inside the allowed
/// networks (an intranet host the operator listed is usually not serving TLS). The URL must have a
/// host and no `user:pass@`. An IP-literal host is checked with [`is_forbidden`]; `localhost` and
/// `*.localhost` count as loopback and are governed by `allow_loopback` alone, since which
/// addresses they name is up to the resolver. Names are checked at connection time by
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
    let http_allowed = policy.allow_http
        || (policy.allow_loopback && host.is_loopback())
        || matches!(host, TargetHost::Ip(addr) if policy.allows(addr));
    if scheme == "http" && !http_allowed {
        return Err(TargetError::SchemeNotAllowed { scheme: scheme.to_owned() });
    }
    match host {
        TargetHost::Ip(addr) if forbidden_under(addr, &policy) => Err(TargetError::ForbiddenAddress { addr }),
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
#[derive(Debug, Clone)]
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
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = resolve_allowed(&host, &policy).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

async fn resolve_allowed(host: &str, policy: &TargetPolicy) -> Result<Vec<SocketAddr>, TargetError> {
    // Port 0: reqwest substitutes the URL's port.
    let resolved = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| TargetError::ResolveFailed { host: host.to_owned(), reason: e.to_string() })?;
    let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
        resolved.partition(|addr| !forbidden_under(addr.ip(), policy));
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
    client_with_agent(policy, timeout, concat!("frontdesk-webhooks/", env!("CARGO_PKG_VERSION")))
}

/// [`client`] with another `User-Agent`, so each feature identifies itself to the sites it
/// contacts (site owners filter and rate-limit by agent).
///
/// # Panics
///
/// If `user_agent` is not a valid header value; callers pass fixed, ASCII agent strings.
pub fn client_with_agent(policy: TargetPolicy, timeout: Duration, user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        // A redirect is a new target chosen by the remote side, which check_url never saw.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        // Through a proxy (e.g. from HTTPS_PROXY) the proxy resolves the target name and our
        // resolver only ever sees the proxy's name, so the guard would silently stop applying.
        .no_proxy()
        .timeout(timeout)
        .user_agent(user_agent)
        .build()
        // Only a TLS backend that fails to initialise makes this fail; rustls with bundled roots
        // does not, so failing here is a build problem, not a runtime condition.
        .expect("building the guarded HTTP client")
}

impl reqwest_openai::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest_openai::dns::Name) -> reqwest_openai::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = resolve_allowed(&host, &policy).await?;
            Ok(Box::new(allowed.into_iter()) as reqwest_openai::dns::Addrs)
        })
    }
}

/// What an operator-configured model endpoint may reach: plain http is fine (a local model
/// server rarely has TLS), an IP-literal or loopback host is allowed exactly as written, and a
/// host name must resolve to public addresses unless `allow_private`.
pub fn operator_endpoint_policy(base_url: &str, allow_private: bool) -> TargetPolicy {
    let host = reqwest::Url::parse(base_url).ok().and_then(|url| url.host_str().map(TargetHost::classify));
    let mut allowed: Vec<IpNet> = match host {
        Some(TargetHost::Ip(ip)) => vec![IpNet::from(ip)],
        _ => Vec::new(),
    };
    if allow_private {
        allowed.extend(["0.0.0.0/0", "::/0"].iter().filter_map(|net| net.parse::<IpNet>().ok()));
    }
    TargetPolicy {
        allow_loopback: matches!(host, Some(TargetHost::LoopbackName)),
        allow_http: true,
        allowed_networks: allowed.into(),
    }
}

/// The HTTP client for the model brain's endpoint `base_url` (which comes from the operator's
/// configuration only): the [`GuardedResolver`] under [`operator_endpoint_policy`], and no
/// redirects, so neither a DNS answer nor the endpoint itself can send the operator's key to
/// another host. No total timeout: the brain bounds each reply itself, streams included.
pub fn model_client(base_url: &str, allow_private: bool) -> reqwest_openai::Client {
    reqwest_openai::Client::builder()
        .redirect(reqwest_openai::redirect::Policy::none())
        .dns_resolver(GuardedResolver::new(operator_endpoint_policy(base_url, allow_private)))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")))
        .build()
        // As for `client_with_agent`: only a TLS backend that cannot start fails here.
        .expect("building the model HTTP client")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn strict() -> TargetPolicy {
        TargetPolicy::default()
    }

    fn loopback() -> TargetPolicy {
        TargetPolicy { allow_loopback: true, ..TargetPolicy::default() }
    }

    /// A policy allowing exactly `networks` (comma-separated), nothing else.
    fn allowing(networks: &str) -> TargetPolicy {
        TargetPolicy { allowed_networks: parse_networks(networks).unwrap().into(), ..TargetPolicy::default() }
    }

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
        for &(text, forbidden_strict, forbidden_loopback) in table {
            let ip = IpAddr::from_str(text).unwrap();
            assert_eq!(is_forbidden(ip, strict()), forbidden_strict, "{text} without allow_loopback");
            assert_eq!(is_forbidden(ip, loopback()), forbidden_loopback, "{text} with allow_loopback");
        }
    }

    #[test]
    fn public_https_urls_are_accepted() {
        for url in ["https://example.com/hook", "https://8.8.8.8/x", "https://[2606:4700:4700::1111]:8443/x?a=b"] {
            let parsed = check_url(url, strict()).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.as_str(), url);
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback_when_allowed() {
        let err = check_url("http://example.com/", strict()).unwrap_err();
        assert_eq!(err, TargetError::SchemeNotAllowed { scheme: "http".into() });
        assert!(err.to_string().contains("only https:// URLs are accepted"), "{err}");
        assert!(check_url("http://example.com/", loopback()).is_err());

        for url in [
            "http://127.0.0.1:8080/x",
            "http://localhost:1/",
            "http://[::1]:9/",
            "http://[::ffff:127.0.0.1]:9/",
            "http://api.localhost./",
        ] {
            assert!(check_url(url, strict()).is_err(), "{url} without allow_loopback");
            let parsed = check_url(url, loopback()).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.scheme(), "http");
        }
        // Loopback https is refused for the loopback, not the scheme.
        assert_eq!(
            check_url("https://localhost/", strict()),
            Err(TargetError::ForbiddenHost { host: "localhost".into() })
        );
        assert!(check_url("https://localhost/", loopback()).is_ok());
    }

    #[test]
    fn allow_loopback_does_not_open_private_ranges() {
        assert!(check_url("http://10.0.0.1/", loopback()).is_err());
        assert_eq!(
            check_url("https://10.0.0.1/", loopback()),
            Err(TargetError::ForbiddenAddress { addr: "10.0.0.1".parse().unwrap() })
        );
        assert!(check_url("http://192.168.0.1:8080/", loopback()).is_err());
    }

    #[test]
    fn forbidden_ip_literals_are_refused_in_any_spelling() {
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        let err = check_url("https://169.254.169.254/latest", strict()).unwrap_err();
        assert_eq!(err, TargetError::ForbiddenAddress { addr: metadata });
        assert!(err.to_string().contains("169.254.169.254"), "{err}");

        // The URL parser normalises the short, hex and integer spellings of IPv4 addresses.
        for url in ["https://0xa9fea9fe/", "https://2852039166/", "https://169.254.43518/"] {
            assert_eq!(check_url(url, loopback()), Err(TargetError::ForbiddenAddress { addr: metadata }), "{url}");
        }
        assert!(check_url("https://0x7f.1/", strict()).is_err());

        let err = check_url("https://[::ffff:169.254.169.254]/", loopback()).unwrap_err();
        assert!(matches!(err, TargetError::ForbiddenAddress { addr: IpAddr::V6(_) }), "{err:?}");
        assert!(check_url("https://[fd00::1]/", loopback()).is_err());
        assert!(check_url("https://[64:ff9b::a00:1]/", strict()).is_err());
    }

    #[test]
    fn credentials_are_refused() {
        let err = check_url("https://user:pw@example.com/", strict()).unwrap_err();
        assert_eq!(err, TargetError::Credentials { host: "example.com".into() });
        assert!(err.to_string().contains("example.com"), "{err}");
        assert!(check_url("https://user@example.com/", strict()).is_err());
        assert!(check_url("https://:pw@example.com/", strict()).is_err());
    }

    #[test]
    fn other_schemes_and_non_urls_are_refused() {
        assert_eq!(
            check_url("ftp://example.com/file", loopback()),
            Err(TargetError::SchemeNotAllowed { scheme: "ftp".into() })
        );
        assert!(check_url("file:///etc/passwd", loopback()).is_err());
        assert!(check_url("gopher://localhost:6379/", loopback()).is_err());
        assert!(matches!(check_url("not a url", loopback()), Err(TargetError::InvalidUrl { .. })));
        assert!(matches!(check_url("", loopback()), Err(TargetError::InvalidUrl { .. })));
        assert!(check_url("https://", loopback()).is_err());
    }

    #[test]
    fn networks_are_parsed_from_a_setting() {
        let nets = parse_networks(" 127.0.0.2/32, 10.1.2.3/8,192.168.1.5 ,fd00::/8, ::1,").unwrap();
        let shown: Vec<String> = nets.iter().map(IpNet::to_string).collect();
        assert_eq!(shown, ["127.0.0.2/32", "10.0.0.0/8", "192.168.1.5/32", "fd00::/8", "::1/128"]);
        assert_eq!(parse_networks(""), Ok(vec![]));
        assert_eq!(parse_networks(" , "), Ok(vec![]));

        for bad in ["10.0.0.0/33", "intranet", "10.0.0.0/8; 10.1.0.0/16", "300.1.1.1", "fd00::/129"] {
            let err = parse_networks(&format!("127.0.0.1, {bad}")).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_the_listed_addresses() {
        let policy = allowing("127.0.0.2/32, 10.0.0.0/8, fd00:1::/32");
        // (address, forbidden)
        let table: &[(&str, bool)] = &[
            ("127.0.0.2", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("fd00:1::5", false),
            // Public addresses stay allowed.
            ("8.8.8.8", false),
            ("::ffff:8.8.8.8", false),
            ("11.0.0.0", false),
            // Neighbours of the listed networks stay forbidden.
            ("127.0.0.1", true),
            ("127.0.0.3", true),
            ("::1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("fd00:2::1", true),
            // IPv6 spellings of an allowed IPv4 address are judged on their own.
            ("::ffff:127.0.0.2", true),
            ("::ffff:10.0.0.1", true),
            ("::10.0.0.1", true),
            ("64:ff9b::a00:1", true),
            ("2002:a00:1::", true),
        ];
        for &(text, forbidden) in table {
            let ip = IpAddr::from_str(text).unwrap();
            assert_eq!(is_forbidden(ip, policy.clone()), forbidden, "{text}");
        }

        // Listing the IPv6 form itself is how an operator allows it.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(!is_forbidden(mapped, allowing("::ffff:127.0.0.1/128")));
        assert!(is_forbidden("127.0.0.1".parse().unwrap(), allowing("::ffff:127.0.0.1/128")));
    }

    #[test]
    fn allowed_ip_literals_may_use_plain_http() {
        let policy = allowing("127.0.0.2/32, 10.0.0.0/8");
        for url in ["http://127.0.0.2:8080/x", "http://10.1.2.3/", "https://10.1.2.3/", "https://127.0.0.2/"] {
            assert!(check_url(url, policy.clone()).is_ok(), "{url}");
        }
        // Only IP literals: a name's addresses are unknown until connection time.
        assert_eq!(
            check_url("http://intranet.example/", policy.clone()),
            Err(TargetError::SchemeNotAllowed { scheme: "http".into() })
        );
        assert!(check_url("https://intranet.example/", policy.clone()).is_ok());
        assert_eq!(
            check_url("https://127.0.0.1/", policy.clone()),
            Err(TargetError::ForbiddenAddress { addr: "127.0.0.1".parse().unwrap() })
        );
        for url in ["http://127.0.0.1/", "http://[::ffff:127.0.0.2]/", "http://localhost/", "http://192.168.0.1/"] {
            assert!(check_url(url, policy.clone()).is_err(), "{url}");
        }
        // The loopback host names stay governed by allow_loopback alone.
        assert_eq!(
            check_url("https://localhost/", allowing("127.0.0.0/8, ::1")),
            Err(TargetError::ForbiddenHost { host: "localhost".into() })
        );
    }

    #[test]
    fn allow_http_opens_the_scheme_not_the_addresses() {
        let policy = TargetPolicy { allow_http: true, ..allowing("127.0.0.1/32") };
        assert!(check_url("http://example.com/page", policy.clone()).is_ok());
        assert!(check_url("http://8.8.8.8/", policy.clone()).is_ok());
        assert!(check_url("http://127.0.0.1:9/", policy.clone()).is_ok());
        for (url, addr) in [
            ("http://169.254.169.254/latest", "169.254.169.254"),
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://[::ffff:127.0.0.1]:9/", "::ffff:127.0.0.1"),
        ] {
            assert_eq!(
                check_url(url, policy.clone()),
                Err(TargetError::ForbiddenAddress { addr: addr.parse().unwrap() }),
                "{url}"
            );
        }
        assert_eq!(
            check_url("http://localhost/", policy.clone()),
            Err(TargetError::ForbiddenHost { host: "localhost".into() })
        );
        assert!(check_url("ftp://example.com/", policy).is_err());
    }

    #[tokio::test]
    async fn resolver_applies_the_allow_list_to_resolved_addresses() {
        let addrs: Vec<SocketAddr> =
            match GuardedResolver::new(allowing("127.0.0.1/32")).resolve(name("localhost")).await {
                Ok(addrs) => addrs.collect(),
                Err(err) => panic!("{err}"),
            };
        assert!(!addrs.is_empty());
        let expected: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(addrs.iter().all(|addr| addr.ip() == expected), "{addrs:?}");
    }

    fn name(host: &str) -> Name {
        Name::from_str(host).unwrap()
    }

    #[tokio::test]
    async fn resolver_refuses_loopback_names_without_allow_loopback() {
        let err = match GuardedResolver::new(strict()).resolve(name("localhost")).await {
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
        let addrs: Vec<SocketAddr> = match GuardedResolver::new(loopback()).resolve(name("localhost")).await {
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

        let err = client(strict(), Duration::from_secs(5)).get(&url).send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");

        let response = client(loopback(), Duration::from_secs(5)).get(&url).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        assert_eq!(response.url().as_str(), url);
        let head = server.await.unwrap().to_ascii_lowercase();
        let agent = format!("user-agent: frontdesk-webhooks/{}\r\n", env!("CARGO_PKG_VERSION"));
        assert!(head.contains(&agent), "{head}");
    }

    #[tokio::test]
    async fn client_with_agent_identifies_as_asked() {
        let (port, server) = redirecting_server().await;
        let url = format!("http://127.0.0.1:{port}/page");
        let response = client_with_agent(allowing("127.0.0.1/32"), Duration::from_secs(5), "frontdesk-test/9")
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::FOUND);
        let head = server.await.unwrap().to_ascii_lowercase();
        assert!(head.contains("user-agent: frontdesk-test/9\r\n"), "{head}");
    }

    #[test]
    fn an_operator_endpoint_is_allowed_exactly_as_written() {
        let ip = |s: &str| IpAddr::from_str(s).unwrap();
        // An IP literal: that address and no neighbour.
        let literal = operator_endpoint_policy("http://10.0.0.5:8000/v1", false);
        assert!(literal.allow_http);
        assert!(!is_forbidden(ip("10.0.0.5"), literal.clone()));
        assert!(is_forbidden(ip("10.0.0.6"), literal.clone()));
        assert!(is_forbidden(ip("169.254.169.254"), literal.clone()));
        assert!(check_url("http://10.0.0.5:8000/v1", literal).is_ok());
        // `localhost`: loopback, nothing else private.
        let local = operator_endpoint_policy("http://localhost:8000/v1", false);
        assert!(!is_forbidden(ip("127.0.0.1"), local.clone()));
        assert!(is_forbidden(ip("192.168.1.1"), local));
        // A name: public addresses only, unless the operator allowed private ones.
        let named = operator_endpoint_policy("https://llm.example.net/v1", false);
        assert!(is_forbidden(ip("127.0.0.1"), named.clone()));
        assert!(is_forbidden(ip("10.1.2.3"), named.clone()));
        assert!(!is_forbidden(ip("93.184.216.34"), named));
        let private = operator_endpoint_policy("https://llm.internal/v1", true);
        assert!(!is_forbidden(ip("10.1.2.3"), private.clone()));
        assert!(!is_forbidden(ip("fd00::1"), private));
    }
}
