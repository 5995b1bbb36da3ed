//! What the load generator sends: a weighted list of request templates.
//!
//! Templates are static (method, path, headers, body), so a benchmark's
//! traffic is fixed before the clock starts and two runs send the same mix.
//! Templates share a *label* when their results should be reported together
//! (e.g. 1,000 search queries under `search:keyword`).

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;

/// One kind of request in a mix.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// Results are reported per label; several templates may share one.
    pub label: String,
    pub method: Method,
    /// Path and query, e.g. `/v1/catalogs`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Relative frequency in the mix (0 = never sent).
    pub weight: u32,
}

impl RequestTemplate {
    pub fn new(label: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        RequestTemplate {
            label: label.into(),
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            weight: 1,
        }
    }

    pub fn get(label: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(label, Method::GET, path)
    }

    /// A POST with a JSON body and `Content-Type: application/json`.
    pub fn post_json(label: impl Into<String>, path: impl Into<String>, body: &serde_json::Value) -> Self {
        let mut template = Self::new(label, Method::POST, path);
        template.body = Bytes::from(body.to_string());
        template.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        template
    }

    /// Adds a header. Panics on an invalid name or value: templates are written by benchmark code.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_str(value).expect("a valid header value");
        self.headers.append(name, value);
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is a valid header value");
        self.headers.insert(AUTHORIZATION, value);
        self
    }

    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }
}

/// A weighted set of templates, validated and indexed for cheap picking.
#[derive(Debug, Clone)]
pub struct RequestMix {
    templates: Vec<RequestTemplate>,
    /// Running sum of weights: template `i` is picked for draws in `[cumulative[i-1], cumulative[i])`.
    cumulative: Vec<u64>,
    /// Each template's path, parsed once (cloning a `Uri` is a reference-count bump).
    uris: Vec<Uri>,
    labels: Vec<String>,
    /// Index into `labels` for each template.
    label_of: Vec<usize>,
}

impl RequestMix {
    pub fn new(templates: Vec<RequestTemplate>) -> anyhow::Result<Self> {
        if templates.iter().all(|template| template.weight == 0) {
            bail!("a request mix needs at least one template with a non-zero weight");
        }
        let mut cumulative = Vec::with_capacity(templates.len());
        let mut uris = Vec::with_capacity(templates.len());
        let mut labels: Vec<String> = Vec::new();
        let mut label_of = Vec::with_capacity(templates.len());
        let mut total = 0u64;
        for template in &templates {
            let uri =
                template.path.parse::<Uri>().with_context(|| format!("invalid request path {:?}", template.path))?;
            uris.push(uri);
            total += u64::from(template.weight);
            cumulative.push(total);
            let label = match labels.iter().position(|label| *label == template.label) {
                Some(index) => index,
                None => {
                    labels.push(template.label.clone());
                    labels.len() - 1
                }
            };
            label_of.push(label);
        }
        Ok(RequestMix { templates, cumulative, uris, labels, label_of })
    }

    /// A mix of one template.
    pub fn single(template: RequestTemplate) -> anyhow::Result<Self> {
        Self::new(vec![template.weight(1)])
    }

    pub fn templates(&self) -> &[RequestTemplate] {
        &self.templates
    }

    /// Distinct labels, in order of first appearance.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub(crate) fn label_of(&self, template: usize) -> usize {
        self.label_of[template]
    }

    /// A template index, drawn by weight.
    pub(crate) fn pick(&self, rng: &mut Rng) -> usize {
        if self.templates.len() == 1 {
            return 0;
        }
        let total = *self.cumulative.last().expect("a mix is never empty");
        let draw = rng.below(total);
        self.cumulative.partition_point(|&bound| bound <= draw)
    }

    /// The hyper request for a template. Cloning the body, URI and header map
    /// is cheap next to a loopback round trip.
    pub(crate) fn request(&self, index: usize, host: &HeaderValue) -> Request<Full<Bytes>> {
        let template = &self.templates[index];
        let mut request = Request::new(Full::new(template.body.clone()));
        *request.method_mut() = template.method.clone();
        *request.uri_mut() = self.uris[index].clone();
        *request.headers_mut() = template.headers.clone();
        // hyper's connection-level client does not add Host, and HTTP/1.1 requires it.
        request.headers_mut().entry(HOST).or_insert_with(|| host.clone());
        request
    }
}

/// One template in a mix file (JSON array):
/// `{"label": "search", "method": "POST", "path": "/v1/products/search",
///   "headers": {"authorization": "Bearer {partner_key}"}, "body": {"q": "shoe"}, "weight": 3}`.
/// Only `path` is required (method GET, weight 1, label = "METHOD path").
/// A JSON `body` is sent as `application/json`; a string body is sent as is.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateSpec {
    label: Option<String>,
    method: Option<String>,
    path: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    body: Option<serde_json::Value>,
    weight: Option<u32>,
}

/// Reads a mix file, replacing each `{name}` of `vars` in header values, paths and string bodies.
pub fn templates_from_json(text: &str, vars: &[(&str, &str)]) -> anyhow::Result<Vec<RequestTemplate>> {
    let specs: Vec<TemplateSpec> = serde_json::from_str(text).context("a mix file is a JSON array of templates")?;
    let substitute = |text: &str| {
        vars.iter().fold(text.to_string(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
    };
    specs
        .into_iter()
        .map(|spec| {
            let method: Method = spec.method.as_deref().unwrap_or("GET").parse().context("invalid method")?;
            let path = substitute(&spec.path);
            let label = spec.label.unwrap_or_else(|| format!("{method} {}", spec.path));
            let mut template = match &spec.body {
                Some(serde_json::Value::String(raw)) => {
                    let mut template = RequestTemplate::new(label, method, path);
                    template.body = Bytes::from(substitute(raw));
                    template
                }
                Some(json) => {
                    let mut template = RequestTemplate::post_json(label, path, json);
                    template.method = method;
                    template
                }
                None => RequestTemplate::new(label, method, path),
            };
            for (name, value) in &spec.headers {
                let name = HeaderName::from_bytes(name.as_bytes()).with_context(|| format!("header name {name:?}"))?;
                let value = HeaderValue::from_str(&substitute(value)).context("invalid header value")?;
                template.headers.insert(name, value);
            }
            Ok(template.weight(spec.weight.unwrap_or(1)))
        })
        .collect()
}

/// A small, fast PRNG (SplitMix64) for picking templates: deterministic per
/// connection so runs are repeatable, and free of any dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (bound > 0); the modulo bias is irrelevant for mixing traffic.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_weights() {
        let mix = RequestMix::new(vec![
            RequestTemplate::get("a", "/a").weight(1),
            RequestTemplate::get("b", "/b").weight(0),
            RequestTemplate::get("c", "/c").weight(3),
        ])
        .unwrap();
        let mut rng = Rng::seeded(7);
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            counts[mix.pick(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0, "a zero weight is never picked");
        let ratio = f64::from(counts[2]) / f64::from(counts[0]);
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn labels_are_shared_and_ordered() {
        let mix = RequestMix::new(vec![
            RequestTemplate::get("search", "/1"),
            RequestTemplate::get("lookup", "/2"),
            RequestTemplate::get("search", "/3"),
        ])
        .unwrap();
        assert_eq!(mix.labels(), ["search", "lookup"]);
        assert_eq!((mix.label_of(0), mix.label_of(1), mix.label_of(2)), (0, 1, 0));
    }

    #[test]
    fn requests_carry_host_headers_and_body() {
        let template = RequestTemplate::post_json("s", "/v1/products/search", &serde_json::json!({"q": "shoe"}))
            .bearer("octo_live_x");
        let mix = RequestMix::single(template).unwrap();
        let request = mix.request(0, &HeaderValue::from_static("127.0.0.1:1"));
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.headers()[HOST], "127.0.0.1:1");
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer octo_live_x");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn mix_files_fill_defaults_and_substitute_variables() {
        let text = r#"[
            {"path": "/healthz"},
            {"label": "search", "method": "POST", "path": "/v1/products/search",
             "headers": {"authorization": "Bearer {partner_key}"}, "body": {"q": "shoe"}, "weight": 3}
        ]"#;
        let templates = templates_from_json(text, &[("partner_key", "octo_live_k")]).unwrap();
        assert_eq!(templates[0].label, "GET /healthz");
        assert_eq!(templates[0].weight, 1);
        assert_eq!(templates[1].method, Method::POST);
        assert_eq!(templates[1].headers[AUTHORIZATION], "Bearer octo_live_k");
        assert_eq!(templates[1].headers[CONTENT_TYPE], "application/json");
        assert_eq!(templates[1].body, Bytes::from(r#"{"q":"shoe"}"#));
        assert_eq!(templates[1].weight, 3);
        assert!(templates_from_json(r#"[{"path": "/", "bogus": 1}]"#, &[]).is_err(), "unknown fields are refused");
    }

    #[test]
    fn empty_or_weightless_mixes_are_refused() {
        assert!(RequestMix::new(Vec::new()).is_err());
        assert!(RequestMix::new(vec![RequestTemplate::get("a", "/a").weight(0)]).is_err());
        assert!(RequestMix::new(vec![RequestTemplate::get("a", "not a path with spaces")]).is_err());
    }
}
