//! The Kubernetes objects fit together (replicas, probes, ports, secrets, labels, the
//! kustomization, the shipped policy), and the ConfigMap's gateway.toml runs as the pod runs it.

use std::collections::BTreeSet;
use std::process::Command;

use mfa_gateway::config::{DEFAULT_PREFIX, parse_duration};
use yaml_rust2::Yaml;

use super::common::*;
use crate::support::free_port;

fn k8s(file: &str) -> Vec<Yaml> {
    yaml(&format!("deploy/kubernetes/{file}"))
}

fn configmap_file(key: &str) -> String {
    let docs = k8s("configmap.yaml");
    doc(&docs, "ConfigMap")["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap data.{key}"))
        .to_string()
}

#[test]
fn kubernetes_deployment_is_replicated_probed_and_locked_down() {
    let docs = k8s("deployment.yaml");
    let d = doc(&docs, "Deployment");
    assert!(d["spec"]["replicas"].as_i64().unwrap() >= 2, "2+ replicas");
    let pod = &d["spec"]["template"]["spec"];
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // Probes on the gateway's own endpoints, over HTTPS, on the port gateway.toml listens on.
    let toml_text = configmap_file("gateway.toml");
    let cfg: toml::Value = toml::from_str(&toml_text).unwrap();
    let listen = cfg["server"]["listen"].as_str().unwrap();
    let ports = c["ports"].as_vec().unwrap();
    let port_named = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("container port {name}"))["containerPort"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(port_named("https"), i64::from(port_of(listen)));
    let metrics_listen = cfg["metrics"]["listen"].as_str().unwrap();
    assert_eq!(port_named("metrics"), i64::from(port_of(metrics_listen)));
    for (probe, path) in [("livenessProbe", "health"), ("readinessProbe", "ready")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(
            get["path"].as_str(),
            Some(format!("{DEFAULT_PREFIX}{path}").as_str()),
            "{probe}"
        );
        assert_eq!(get["scheme"].as_str(), Some("HTTPS"), "{probe}");
        assert_eq!(get["port"].as_str(), Some("https"), "{probe}");
    }

    // Non-root, read-only, nothing to escalate.
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert!(pod["securityContext"]["runAsUser"].as_i64().unwrap() > 0);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);

    // Graceful: preStop sleep + shutdown_grace fit in the termination grace period.
    let sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_i64()
        .unwrap();
    let grace = parse_duration(cfg["server"]["shutdown_grace"].as_str().unwrap()).unwrap();
    let termination = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(
        termination > sleep + i64::try_from(grace.as_secs()).unwrap(),
        "terminationGracePeriodSeconds {termination} <= preStop {sleep}s + shutdown_grace {grace:?}"
    );
    assert!(c["resources"]["requests"]["cpu"].as_str().is_some());
    assert!(c["resources"]["requests"]["memory"].as_str().is_some());

    // The secrets the pod reads are the ones gateway.toml names and the example Secret has.
    let env_names: BTreeSet<String> = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(env_names, secret_env_names(&toml_text));
    let secrets = k8s("secret.example.yaml");
    let opaque = secrets
        .iter()
        .find(|s| s["type"].as_str() == Some("Opaque"))
        .unwrap();
    for e in c["env"].as_vec().unwrap() {
        let r = &e["valueFrom"]["secretKeyRef"];
        assert_eq!(r["name"].as_str(), opaque["metadata"]["name"].as_str());
        let key = r["key"].as_str().unwrap();
        assert!(!opaque["stringData"][key].is_badvalue(), "Secret key {key}");
    }
    let tls = secrets
        .iter()
        .find(|s| s["type"].as_str() == Some("kubernetes.io/tls"))
        .unwrap();
    let volumes = pod["volumes"].as_vec().unwrap();
    let tls_volume = volumes.iter().find(|v| !v["secret"].is_badvalue()).unwrap();
    assert_eq!(
        tls_volume["secret"]["secretName"].as_str(),
        tls["metadata"]["name"].as_str()
    );
    let cm_volume = volumes
        .iter()
        .find(|v| !v["configMap"].is_badvalue())
        .unwrap();
    assert_eq!(
        cm_volume["configMap"]["name"].as_str(),
        doc(&k8s("configmap.yaml"), "ConfigMap")["metadata"]["name"].as_str()
    );
}

#[test]
fn kubernetes_objects_select_the_pods_and_the_kustomization_lists_them() {
    let docs = k8s("deployment.yaml");
    let d = doc(&docs, "Deployment");
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    assert_eq!(d["spec"]["selector"]["matchLabels"], *labels);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let port_names: Vec<&str> = c["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for svc in k8s("service.yaml") {
        assert_eq!(svc["kind"].as_str(), Some("Service"));
        assert_eq!(svc["spec"]["selector"], *labels);
        for p in svc["spec"]["ports"].as_vec().unwrap() {
            let target = p["targetPort"].as_str().unwrap();
            assert!(port_names.contains(&target), "targetPort {target}");
        }
    }
    let pdb_docs = k8s("pdb.yaml");
    let pdb = doc(&pdb_docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *labels);
    let min = pdb["spec"]["minAvailable"].as_i64().unwrap();
    assert!(
        min >= 1 && min < d["spec"]["replicas"].as_i64().unwrap(),
        "a drain must be able to evict one pod while one serves"
    );

    // Everything but the example secrets and the kustomization itself is listed.
    let kz = &k8s("kustomization.yaml")[0];
    let listed: BTreeSet<String> = strs(&kz["resources"]).into_iter().collect();
    let mut present = BTreeSet::new();
    for e in std::fs::read_dir(root().join("deploy/kubernetes")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".yaml") && name != "kustomization.yaml" && name != "secret.example.yaml"
        {
            present.insert(name);
        }
    }
    assert_eq!(listed, present);
    assert_eq!(
        kz["images"][0]["name"].as_str(),
        c["image"].as_str().unwrap().split(':').next()
    );
}

#[test]
fn kubernetes_configmap_carries_the_shipped_policy() {
    assert_eq!(configmap_file("policy.toml"), read("config/policy.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_config_runs_with_the_example_secrets_filled_in() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc/mfa-gateway");
    let (_redis, redis_url) = redis_with_password(tmp.path());
    let (vms, _, _stop) = mfa_gateway::demo::vms::spawn(0).await.unwrap();
    let (https, metrics) = (free_port(), free_port());

    // The Secret mfa-gateway-tls, as the kubelet mounts it.
    let dev = dev_cert(&tmp.path().join("dev"));
    write(
        &etc.join("tls/tls.crt"),
        &std::fs::read_to_string(&dev.server.cert).unwrap(),
    );
    write(
        &etc.join("tls/tls.key"),
        &std::fs::read_to_string(&dev.server.key).unwrap(),
    );
    // The ConfigMap, addresses moved to loopback.
    let mut text = configmap_file("gateway.toml");
    text = swap(&text, "/etc/mfa-gateway/", &format!("{}/", etc.display()));
    text = swap(&text, "\"0.0.0.0:8443\"", &format!("\"127.0.0.1:{https}\""));
    text = swap(
        &text,
        "\"0.0.0.0:9090\"",
        &format!("\"127.0.0.1:{metrics}\""),
    );
    text = swap(
        &text,
        "http://vms.vms.svc.cluster.local:8080",
        &format!("http://{vms}"),
    );
    text = swap(
        &text,
        "redis://redis.mfa-gateway.svc.cluster.local:6379/0",
        &redis_url,
    );
    write(&etc.join("config/gateway.toml"), &text);
    write(
        &etc.join("config/policy.toml"),
        &configmap_file("policy.toml"),
    );

    // The Secret mfa-gateway-secrets as environment variables.
    let secrets = k8s("secret.example.yaml");
    let opaque = secrets
        .iter()
        .find(|s| s["type"].as_str() == Some("Opaque"))
        .unwrap();
    let example: Vec<(String, String)> = opaque["stringData"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect();
    let filled = fill_secrets(&example);
    let config = etc.join("config/gateway.toml");
    assert_placeholders_refused_and_secrets_accepted(&config, &example, &filled);

    // The container's command line: the image's entrypoint with the Deployment's args.
    let docs = k8s("deployment.yaml");
    let args = strs(&doc(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
    let args = args_moved(&args, "/etc/mfa-gateway/", &etc);
    let gw = Proc::spawn(
        Command::new(BIN).args(&args).envs(filled),
        tmp.path().join("gateway.log"),
    );
    let ca = std::fs::read_to_string(&dev.ca).unwrap();
    assert_serving(&ca, https, metrics, &gw).await;
    assert_json_logs(&gw.log());
}
