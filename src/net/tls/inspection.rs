//! Recognising TLS-inspection products from the issuer they put on re-signed certificates.
//!
//! Inspection proxies re-sign every site with their own CA, whose name usually says which product
//! it is. Naming the product turns "unknown issuer" into something the network team can act on.

/// Issuer fragments (matched case-insensitively, as whole words, within CN/O/OU) and the product
/// they identify. Patterns are specific on purpose: plain "Cloudflare" or "Palo Alto" would also
/// match public CAs or a locality.
const PRODUCTS: &[(&str, &str)] = &[
    ("zscaler", "Zscaler"),
    ("netskope", "Netskope"),
    ("goskope", "Netskope"),
    ("blue coat", "Blue Coat (Symantec ProxySG)"),
    ("bluecoat", "Blue Coat (Symantec ProxySG)"),
    ("proxysg", "Blue Coat (Symantec ProxySG)"),
    ("palo alto networks", "Palo Alto Networks"),
    ("fortigate", "Fortinet FortiGate"),
    ("fortinet", "Fortinet FortiGate"),
    ("cisco umbrella", "Cisco Umbrella"),
    ("opendns", "Cisco Umbrella"),
    ("forcepoint", "Forcepoint"),
    ("websense", "Forcepoint"),
    ("sophos", "Sophos"),
    ("check point", "Check Point"),
    ("checkpoint", "Check Point"),
    ("skyhigh", "Skyhigh Security (McAfee Web Gateway)"),
    ("mcafee", "Skyhigh Security (McAfee Web Gateway)"),
    ("mitmproxy", "mitmproxy"),
    ("kaspersky", "Kaspersky"),
    ("avast", "Avast"),
    ("avg", "AVG"),
    ("eset", "ESET"),
    ("bitdefender", "Bitdefender"),
    ("barracuda", "Barracuda"),
    ("watchguard", "WatchGuard"),
    ("iboss", "iboss"),
    ("menlo security", "Menlo Security"),
    ("cloudflare for teams", "Cloudflare Gateway"),
    ("cloudflare gateway", "Cloudflare Gateway"),
    ("gateway ca - cloudflare", "Cloudflare Gateway"),
    ("squid", "Squid"),
    ("sonicwall", "SonicWall"),
    ("untangle", "Untangle"),
    ("lightspeed systems", "Lightspeed Systems"),
    ("securly", "Securly"),
    ("contentkeeper", "ContentKeeper"),
    ("cyberoam", "Sophos Cyberoam"),
    ("fiddler", "Fiddler"),
    ("portswigger", "Burp Suite"),
    ("charles proxy", "Charles Proxy"),
];

/// Names the TLS-inspection product an issuer looks like, from its CN, O and OU (other attributes,
/// such as a locality, are ignored). `issuer` is a distinguished name as [`super::CertInfo`] holds
/// it (`C=US, O=Zscaler Inc., CN=Zscaler Root CA`); a string without attributes is matched whole.
#[must_use]
pub fn inspection_product(issuer: &str) -> Option<&'static str> {
    let names = naming_attributes(issuer).to_lowercase();
    PRODUCTS
        .iter()
        .find(|(pattern, _)| contains_word(&names, pattern))
        .map(|(_, product)| *product)
}

/// The values of the CN, O and OU attributes of a `KEY=value, KEY=value` name, joined by '\n'.
fn naming_attributes(dn: &str) -> String {
    if !dn.contains('=') {
        return dn.to_owned();
    }
    let mut kept = Vec::new();
    let mut keep_current = false;
    for part in dn.split(", ") {
        match part.split_once('=') {
            Some((key, value)) if is_attribute_key(key) => {
                keep_current = matches!(key.trim(), "CN" | "O" | "OU");
                if keep_current {
                    kept.push(value.to_owned());
                }
            }
            // A value that itself contained ", " continues the previous attribute.
            _ => {
                if let Some(last) = kept.last_mut().filter(|_| keep_current) {
                    last.push_str(", ");
                    last.push_str(part);
                }
            }
        }
    }
    kept.join("\n")
}

fn is_attribute_key(key: &str) -> bool {
    let key = key.trim();
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

/// `pattern` occurs in `haystack` with no letter or digit directly before or after it, so "eset"
/// does not match "reset" and "avg" does not match "lavg".
fn contains_word(haystack: &str, pattern: &str) -> bool {
    haystack.match_indices(pattern).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + pattern.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("C=US, ST=California, O=Zscaler Inc., OU=Zscaler Inc., CN=Zscaler Intermediate Root CA (zscloud.net)", Some("Zscaler") ; "zscaler intermediate")]
    #[test_case("CN=ca.myorg.goskope.com, OU=7Q9N, O=Netskope Inc", Some("Netskope") ; "netskope tenant ca")]
    #[test_case("O=Blue Coat Systems, CN=Blue Coat SG-S200 Series", Some("Blue Coat (Symantec ProxySG)") ; "blue coat")]
    #[test_case("O=Palo Alto Networks, OU=Firewall, CN=Forward-Trust-CA", Some("Palo Alto Networks") ; "palo alto forward trust")]
    #[test_case("C=US, O=Fortinet, OU=Certificate Authority, CN=FG100FTK19000000, emailAddress=support@fortinet.com", Some("Fortinet FortiGate") ; "fortigate serial cn")]
    #[test_case("CN=Fortinet_CA_SSL", Some("Fortinet FortiGate") ; "fortinet underscore")]
    #[test_case("O=Cisco, CN=Cisco Umbrella Secondary SubCA ord-SG", Some("Cisco Umbrella") ; "cisco umbrella")]
    #[test_case("O=Forcepoint LLC, CN=Forcepoint Cloud Web Security", Some("Forcepoint") ; "forcepoint")]
    #[test_case("O=Sophos, CN=Sophos SSL CA_C1234", Some("Sophos") ; "sophos")]
    #[test_case("O=Check Point Software, CN=HTTPS Inspection CA", Some("Check Point") ; "check point")]
    #[test_case("O=McAfee, CN=McAfee Web Gateway", Some("Skyhigh Security (McAfee Web Gateway)") ; "mcafee")]
    #[test_case("O=mitmproxy, CN=mitmproxy", Some("mitmproxy") ; "mitmproxy")]
    #[test_case("CN=Kaspersky Anti-Virus Personal Root Certificate", Some("Kaspersky") ; "kaspersky")]
    #[test_case("CN=Avast Web/Mail Shield Root", Some("Avast") ; "avast")]
    #[test_case("CN=AVG Web/Mail Shield Root", Some("AVG") ; "avg")]
    #[test_case("O=ESET spol. s r. o., CN=ESET SSL Filter CA", Some("ESET") ; "eset")]
    #[test_case("CN=Bitdefender Personal CA.Net-Defender", Some("Bitdefender") ; "bitdefender")]
    #[test_case("O=Barracuda Networks, CN=Barracuda SSL Inspection", Some("Barracuda") ; "barracuda")]
    #[test_case("O=WatchGuard_Technologies, CN=Fireware HTTPS Proxy", Some("WatchGuard") ; "watchguard")]
    #[test_case("O=iboss, CN=iboss SSL CA", Some("iboss") ; "iboss")]
    #[test_case("O=Menlo Security, CN=Menlo Security Intermediate CA", Some("Menlo Security") ; "menlo")]
    #[test_case("O=Cloudflare, Inc., CN=Cloudflare for Teams ECC Certificate Authority", Some("Cloudflare Gateway") ; "cloudflare gateway")]
    #[test_case("CN=Squid CA, O=Example Corp", Some("Squid") ; "squid")]
    #[test_case("zscaler root ca", Some("Zscaler") ; "plain string lower case")]
    #[test_case("C=US, O=Let's Encrypt, CN=R11", None ; "public ca")]
    #[test_case("C=US, O=DigiCert Inc, CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1", None ; "digicert")]
    #[test_case("C=US, O=Cloudflare, Inc., CN=Cloudflare Inc ECC CA-3", None ; "cloudflare public ca is not gateway")]
    #[test_case("C=US, L=Palo Alto, O=Example, CN=Example CA", None ; "locality is ignored")]
    #[test_case("CN=Reset Corp Root", None ; "eset needs a word boundary")]
    #[test_case("", None ; "empty")]
    fn recognises_products(issuer: &str, expected: Option<&str>) {
        assert_eq!(inspection_product(issuer), expected);
    }

    #[test]
    fn comma_inside_a_value_stays_with_its_attribute() {
        assert_eq!(
            naming_attributes("C=US, O=Cloudflare, Inc., L=Menlo Security Park, CN=X"),
            "Cloudflare, Inc.\nX"
        );
    }
}
