//! Every YAML file under deploy/ parses, multi-document files included.

use std::path::{Path, PathBuf};

use yaml_rust2::YamlLoader;

use super::common::{root, yaml};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let mut files = Vec::new();
    yaml_files(&root().join("deploy"), &mut files);
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    for expected in [
        "deploy/container/compose.yaml",
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/service.yaml",
        "deploy/kubernetes/secret.example.yaml",
        "deploy/prometheus/mfa-gateway-alerts.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for (path, name) in files.iter().zip(&names) {
        let docs = YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!docs.is_empty(), "{name}: no document");
        for (i, d) in docs.iter().enumerate() {
            assert!(
                d.as_hash().is_some(),
                "{name}: document {i} is not a mapping"
            );
        }
    }
    // Multi-document files are read whole, not just their first document.
    assert_eq!(yaml("deploy/kubernetes/service.yaml").len(), 2);
    assert_eq!(yaml("deploy/kubernetes/secret.example.yaml").len(), 2);
    // And the parser does refuse broken YAML.
    assert!(YamlLoader::load_from_str("a: [1, 2\nb: c").is_err());
    assert!(YamlLoader::load_from_str("a: 1\na: 2\n").is_err());
}
