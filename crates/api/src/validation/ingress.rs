//! Ingresses (`pkg/apis/networking/validation/validation.go`: `ValidateIngressSpec`,
//! `validateIngressRules`, `validateHTTPIngressPath`, `validateIngressBackend`,
//! `validateIngressTLS`).

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, Ingress, IngressBackend, IngressRule, IngressSpec,
};
use std::net::IpAddr;

use super::meta::{name_is_dns1035_label, name_is_dns_subdomain};
use super::names::{
    is_dns1123_subdomain, is_valid_path_segment_name, is_valid_port_name, is_valid_port_num,
    is_wildcard_dns1123_subdomain,
};
use super::path::FieldPath;
use crate::FieldError;

const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];

/// Leniency for objects already stored with values that newer rules reject.
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

/// An Ingress on create or update (metadata is checked by the caller).
pub fn validate_ingress(ing: &Ingress, old: Option<&Ingress>) -> Vec<FieldError> {
    let old_spec = old.and_then(|o| o.spec.as_ref());
    let opts = Options {
        allow_invalid_secret_name: old_spec.is_some_and(|s| {
            s.tls
                .iter()
                .flatten()
                .any(|t| !tls_secret_name_errors(t.secret_name.as_deref()).is_empty())
        }),
        allow_invalid_wildcard_host_rule: old_spec.is_some_and(|s| {
            s.rules.iter().flatten().any(|r| {
                r.host.as_deref().unwrap_or("").contains('*')
                    && !validate_rule_value(r, &FieldPath::new("")).is_empty()
            })
        }),
    };
    let empty = IngressSpec::default();
    validate_ingress_spec(
        ing.spec.as_ref().unwrap_or(&empty),
        &FieldPath::new("spec"),
        &opts,
    )
}

fn validate_ingress_spec(spec: &IngressSpec, path: &FieldPath, opts: &Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rules = spec.rules.as_deref().unwrap_or_default();
    if rules.is_empty() && spec.default_backend.is_none() {
        // Go prints the (internal) rules slice as the bad value.
        let shown = match &spec.rules {
            None => "[]networking.IngressRule(nil)",
            Some(_) => "[]networking.IngressRule{}",
        };
        errs.push(FieldError::invalid_repr(
            path,
            shown,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = &spec.default_backend {
        errs.extend(validate_backend(b, &path.child("defaultBackend")));
    }
    let rp = path.child("rules");
    for (i, rule) in rules.iter().enumerate() {
        let host = rule.host.as_deref().unwrap_or("");
        let hp = rp.index(i).child("host");
        let mut wildcard = false;
        if !host.is_empty() {
            if host.parse::<IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    &hp,
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                wildcard = true;
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(msgs.into_iter().map(|m| FieldError::invalid(&hp, host, m)));
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_rule_value(rule, &rp.index(i)));
        }
    }
    for (t, tls) in spec.tls.iter().flatten().enumerate() {
        let tp = path.child("tls").index(t);
        for (i, host) in tls.hosts.iter().flatten().enumerate() {
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(tp.child("hosts").index(i), host.as_str(), m)),
            );
        }
        if !opts.allow_invalid_secret_name {
            let name = tls.secret_name.as_deref().unwrap_or("");
            errs.extend(
                tls_secret_name_errors(tls.secret_name.as_deref())
                    .into_iter()
                    .map(|m| FieldError::invalid(tp.child("secretName"), name, m)),
            );
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        errs.extend(
            name_is_dns_subdomain(class, false)
                .into_iter()
                .map(|m| FieldError::invalid(path.child("ingressClassName"), class.as_str(), m)),
        );
    }
    errs
}

fn tls_secret_name_errors(name: Option<&str>) -> Vec<String> {
    match name {
        None | Some("") => Vec::new(),
        Some(n) => name_is_dns_subdomain(n, false),
    }
}

/// `validateIngressRuleValue` / `validateHTTPIngressRuleValue`.
fn validate_rule_value(rule: &IngressRule, path: &FieldPath) -> Vec<FieldError> {
    let Some(http) = &rule.http else {
        return Vec::new();
    };
    let hp = path.child("http");
    let mut errs = Vec::new();
    if http.paths.is_empty() {
        errs.push(FieldError::required(hp.child("paths"), ""));
    }
    for (i, p) in http.paths.iter().enumerate() {
        errs.extend(validate_http_path(p, &hp.child("paths").index(i)));
    }
    errs
}

/// `validateHTTPIngressPath`.
fn validate_http_path(p: &HTTPIngressPath, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let value = p.path.as_deref().unwrap_or("");
    let pp = path.child("path");
    match p.path_type.as_str() {
        "" => {
            return vec![FieldError::required(
                path.child("pathType"),
                "pathType must be specified",
            )]
        }
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
            if !value.is_empty() {
                for seq in INVALID_PATH_SEQUENCES
                    .iter()
                    .filter(|s| value.contains(**s))
                {
                    errs.push(FieldError::invalid(
                        &pp,
                        value,
                        format!("must not contain '{seq}'"),
                    ));
                }
                for suffix in INVALID_PATH_SUFFIXES
                    .iter()
                    .filter(|s| value.ends_with(**s))
                {
                    errs.push(FieldError::invalid(
                        &pp,
                        value,
                        format!("cannot end with '{suffix}'"),
                    ));
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(&pp, value, "must be an absolute path"));
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(validate_backend(&p.backend, &path.child("backend")));
    errs
}

/// `validateIngressBackend`: exactly one of a service (name and port) or a resource.
fn validate_backend(b: &IngressBackend, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match (&b.resource, &b.service) {
        (Some(_), Some(_)) => {
            return vec![FieldError::invalid(
                path,
                "",
                "cannot set both resource and service backends",
            )]
        }
        (Some(r), None) => {
            let rp = path.child("resource");
            if let Some(group) = &r.api_group {
                errs.extend(
                    is_dns1123_subdomain(group)
                        .into_iter()
                        .map(|m| FieldError::invalid(rp.child("apiGroup"), group.as_str(), m)),
                );
            }
            for (field, v) in [("kind", &r.kind), ("name", &r.name)] {
                if v.is_empty() {
                    errs.push(FieldError::required(
                        rp.child(field),
                        format!("{field} is required"),
                    ));
                } else {
                    errs.extend(
                        is_valid_path_segment_name(v)
                            .into_iter()
                            .map(|m| FieldError::invalid(rp.child(field), v.as_str(), m)),
                    );
                }
            }
        }
        (None, Some(s)) => {
            let sp = path.child("service");
            if s.name.is_empty() {
                errs.push(FieldError::required(sp.child("name"), ""));
            } else {
                errs.extend(
                    name_is_dns1035_label(&s.name, false)
                        .into_iter()
                        .map(|m| FieldError::invalid(sp.child("name"), s.name.as_str(), m)),
                );
            }
            let port = s.port.as_ref();
            let name = port.and_then(|p| p.name.as_deref()).unwrap_or("");
            let number = port.and_then(|p| p.number).unwrap_or(0);
            let pp = sp.child("port");
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => errs.extend(
                    is_valid_port_name(name)
                        .into_iter()
                        .map(|m| FieldError::invalid(pp.child("name"), name, m)),
                ),
                (true, false) => errs.extend(
                    is_valid_port_num(number.into())
                        .into_iter()
                        .map(|m| FieldError::invalid(pp.child("number"), number, m)),
                ),
                (true, true) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn check(spec: Value, old: Option<Value>) -> Vec<String> {
        let ing: Ingress =
            serde_json::from_value(json!({"metadata": {"name": "i"}, "spec": spec})).unwrap();
        let old: Option<Ingress> = old.map(|o| {
            serde_json::from_value(json!({"metadata": {"name": "i"}, "spec": o})).unwrap()
        });
        validate_ingress(&ing, old.as_ref())
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn rule(path: Value) -> Value {
        json!({"rules": [{"host": "foo.example.com", "http": {"paths": [path]}}]})
    }

    fn svc(name: &str, port: Value) -> Value {
        json!({"service": {"name": name, "port": port}})
    }

    #[test]
    fn valid_ingress_passes() {
        assert!(check(
            json!({
                "ingressClassName": "nginx",
                "defaultBackend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "assets"}},
                "rules": [{"host": "*.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": svc("web", json!({"number": 80}))},
                    {"pathType": "ImplementationSpecific", "backend": svc("web", json!({"name": "http"}))}
                ]}}],
                "tls": [{"hosts": ["*.example.com", "foo.example.com"], "secretName": "tls"}]
            }),
            None
        )
        .is_empty());
    }

    #[test]
    fn backend_errors_match_upstream() {
        let p = "spec.rules[0].http.paths[0]";
        assert_eq!(
            check(
                rule(json!({"path": "/", "pathType": "Prefix", "backend": {}})),
                None
            ),
            [format!(
                "{p}.backend: Invalid value: \"\": resource or service backend is required"
            )]
        );
        assert_eq!(
            check(
                rule(json!({"path": "/", "pathType": "Prefix", "backend": {
                    "service": {"name": "web", "port": {"number": 80}},
                    "resource": {"kind": "Bucket", "name": "b"}
                }})),
                None
            ),
            [format!(
                "{p}.backend: Invalid value: \"\": cannot set both resource and service backends"
            )]
        );
        assert_eq!(
            check(
                rule(
                    json!({"path": "/", "pathType": "Prefix", "backend": svc("", json!({"name": "http", "number": 80}))})
                ),
                None
            ),
            [
                format!("{p}.backend.service.name: Required value"),
                format!(
                    "{p}.backend: Invalid value: \"\": cannot set both port name & port number"
                ),
            ]
        );
        assert_eq!(
            check(
                rule(json!({"path": "/", "pathType": "Prefix", "backend": svc("web", json!({}))})),
                None
            ),
            [format!(
                "{p}.backend: Required value: port name or number is required"
            )]
        );
        assert_eq!(
            check(rule(json!({"path": "/", "pathType": "Prefix", "backend": svc("web", json!({"number": 70000}))})), None),
            [format!("{p}.backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive")]
        );
        assert_eq!(
            check(rule(json!({"path": "/", "pathType": "Prefix", "backend": svc("1web", json!({"number": 80}))})), None),
            [format!("{p}.backend.service.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")]
        );
        assert_eq!(
            check(
                rule(
                    json!({"path": "/", "pathType": "Prefix", "backend": {"resource": {"name": "b"}}})
                ),
                None
            ),
            [format!(
                "{p}.backend.resource.kind: Required value: kind is required"
            )]
        );
    }

    #[test]
    fn path_and_spec_errors_match_upstream() {
        let p = "spec.rules[0].http.paths[0]";
        let backend = svc("web", json!({"number": 80}));
        assert_eq!(
            check(
                rule(json!({"path": "foo", "pathType": "Exact", "backend": backend})),
                None
            ),
            [format!(
                "{p}.path: Invalid value: \"foo\": must be an absolute path"
            )]
        );
        assert_eq!(
            check(
                rule(json!({"path": "/foo//bar/.", "pathType": "Prefix", "backend": backend})),
                None
            ),
            [
                format!("{p}.path: Invalid value: \"/foo//bar/.\": must not contain '//'"),
                format!("{p}.path: Invalid value: \"/foo//bar/.\": cannot end with '/.'"),
            ]
        );
        assert_eq!(
            check(rule(json!({"path": "/", "pathType": "Regex", "backend": backend})), None),
            [format!("{p}.pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"")]
        );
        assert_eq!(
            check(json!({}), None),
            ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
        );
        assert_eq!(
            check(json!({"rules": [{"host": "1.2.3.4", "http": {"paths": []}}]}), None),
            [
                "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
                "spec.rules[0].http.paths: Required value",
            ]
        );
        assert_eq!(
            check(json!({"defaultBackend": backend, "tls": [{"hosts": ["*.*.example.com"], "secretName": "Bad"}]}), None),
            [
                "spec.tls[0].hosts[0]: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.tls[0].secretName: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ]
        );
        // A secret name already stored invalid stays allowed on update.
        let bad_tls = json!({"defaultBackend": backend, "tls": [{"secretName": "Bad"}]});
        assert!(check(bad_tls.clone(), Some(bad_tls)).is_empty());
    }
}
