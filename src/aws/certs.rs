//! Listener certificates, for the coverage check: ACM's DescribeCertificate, or IAM's GetServerCertificate
//! (whose names are in the certificate itself, parsed here). One call per certificate, concurrently; a
//! certificate that cannot be read is reported as such, not as an error of the whole run.

use std::collections::BTreeMap;

use futures_util::{StreamExt, stream};

use super::{Aws, call};
use crate::plan::coverage::Certificate;

/// The names and end of validity of a PEM certificate (an IAM server certificate's body).
pub(crate) fn from_pem(pem: &str) -> Result<Certificate, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut names: Vec<String> = cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase).collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(n) = name {
                names.push(n.to_ascii_lowercase());
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(Certificate { names, not_after: cert.validity().not_after.timestamp() })
}

impl Aws {
    pub async fn certificates(&self, arns: &[String]) -> BTreeMap<String, Result<Certificate, String>> {
        stream::iter(arns.iter().cloned())
            .map(|arn| async move {
                let cert = if arn.contains(":acm:") {
                    self.acm_certificate(&arn).await
                } else if let Some((_, name)) = arn.split_once(":server-certificate/") {
                    self.iam_certificate(name.rsplit('/').next().unwrap_or(name)).await
                } else {
                    Err("neither an ACM certificate nor an IAM server certificate".to_string())
                };
                (arn, cert)
            })
            .buffer_unordered(super::READS_IN_FLIGHT)
            .collect()
            .await
    }

    async fn acm_certificate(&self, arn: &str) -> Result<Certificate, String> {
        let out = self.acm.describe_certificate().certificate_arn(arn).send().await.map_err(|e| call("acm", "DescribeCertificate", arn)(e).to_string())?;
        let c = out.certificate().ok_or("ACM returned no certificate")?;
        let mut names: Vec<String> = c.subject_alternative_names().iter().map(|n| n.to_ascii_lowercase()).collect();
        names.extend(c.domain_name().map(str::to_ascii_lowercase));
        names.sort();
        names.dedup();
        let not_after = c.not_after().map(|t| t.secs()).ok_or("the certificate has no end of validity (not issued yet?)")?;
        Ok(Certificate { names, not_after })
    }

    async fn iam_certificate(&self, name: &str) -> Result<Certificate, String> {
        let out = self
            .iam
            .get_server_certificate()
            .server_certificate_name(name)
            .send()
            .await
            .map_err(|e| call("iam", "GetServerCertificate", name)(e).to_string())?;
        let body = out.server_certificate().map(|c| c.certificate_body()).ok_or("IAM returned no certificate")?;
        from_pem(body)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_iam_certificate_body_gives_its_names_and_end() {
        let cert = super::from_pem(include_str!("../../tests/fixtures/acme-test-cert.pem")).unwrap();
        assert_eq!(cert.names, vec!["*.shop.acme.co.uk", "acme.co.uk", "www.acme.co.uk"]);
        assert!(cert.not_after > 2_000_000_000, "valid for ten years from 2026");
        assert!(super::from_pem("not a certificate").is_err());
    }
}
