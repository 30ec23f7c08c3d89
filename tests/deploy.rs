//! bosun-deploy: validation messages and locations, the rendered API inputs, and a
//! full apply / re-apply / change / delete cycle against moto_server through the real
//! AWS SDK, read back resource by resource.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::proxy;
use common::world::*;
use common::*;

const HEAD: &str = "stack: orders\nnetwork: { subnets: [subnet-1] }\nresources:\n";

#[test]
fn the_example_is_valid() {
    let out = deploy(&["validate", "--stack", EXAMPLE], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn every_problem_is_reported_at_once_with_its_location() {
    let dir = TempDir::new("invalid");
    let text = "\
stack: orders
resources:
  q:
    type: sqs-queue
    properties: { visibilityTimeoutSeconds: 10, colour: red }
  w:
    type: worker-service
    properties:
      packaging: { type: prebuilt-image, properties: { image: x, includesBosun: true } }
      command: [run]
      stopTimeout: 150
      resources: { cpu: 0.25, memory: 4096 }
      environment:
        - { name: A, value: \"$ResourceParam('nope', 'url')\" }
        - { name: B, value: \"$Bogus('x')\" }
        - { name: C, value: \"$ResourceParam('q', 'colour')\" }
      connectTo: [q, ghost, z]
      internalHealthCheck: { healthCheckCommand: [x], intervalSeconds: 1, retries: 11 }
      logging: { retentionDays: 10 }
      scaling: { minInstances: 3, maxInstances: 2 }
  j:
    type: scheduled-job
    properties:
      packaging: { type: prebuilt-image, properties: { image: x, includesBosun: true } }
      command: [run]
      schedule: \"cron(0 3 * * * *)\"
      resources: { cpu: 3, memory: 512 }
      retryAttempts: 200
  z:
    type: lambda
";
    let file = write(&dir, "bad.yaml", text);
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let expected = [
        "5:49: error: resources.q.properties.colour: unknown key 'colour'",
        "11:7: error: resources.w.properties.stopTimeout: 150 is out of range: allowed 2..=120",
        "12:31: error: resources.w.properties.resources.memory: 4096 MiB does not go with 0.25 vCPU on Fargate: allowed 512, 1024, 2048",
        "14:22: error: resources.w.properties.environment.0.value: $ResourceParam: no resource named 'nope'",
        "15:22: error: resources.w.properties.environment.1.value: '$Bogus('x')': unknown directive (known: $Secret, $Param, $ResourceParam, $Stage)",
        "16:22: error: resources.w.properties.environment.2.value: $ResourceParam: 'q' (sqs-queue) has no parameter 'colour': allowed url, arn, name",
        "17:22: error: resources.w.properties.connectTo.1: no resource named 'ghost'",
        "18:55: error: resources.w.properties.internalHealthCheck.intervalSeconds: 1 is out of range: allowed 5..=300",
        "18:75: error: resources.w.properties.internalHealthCheck.retries: 11 is out of range: allowed 1..=10",
        "19:18: error: resources.w.properties.logging.retentionDays: 10 is not a CloudWatch Logs retention: allowed 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
        "20:35: error: resources.w.properties.scaling.maxInstances: 2 is less than minInstances (3): allowed minInstances <= maxInstances",
        "26:7: error: resources.j.properties.schedule: cron(0 3 * * * *): one of day-of-month ('*') and day-of-week ('*') must be '?'",
        "27:20: error: resources.j.properties.resources.cpu: 3 vCPU is not a Fargate size: allowed 0.25, 0.5, 1, 2, 4, 8, 16",
        "28:7: error: resources.j.properties.retryAttempts: 200 is out of range: allowed 0..=185",
        // A type bosun-deploy does not offer: said once, at the type (not again where
        // connectTo names it).
        "30:5: error: resources.z.type: \"lambda\" is not a resource type bosun-deploy offers: it offers sqs-queue, worker-service, private-service, scheduled-job, bucket",
    ];
    for e in expected {
        let line = format!("{file}:{e}");
        assert!(
            err.lines().any(|l| l == line),
            "missing:\n{line}\nin:\n{err}"
        );
    }
    assert_eq!(
        err.lines().filter(|l| l.contains(": error: ")).count(),
        expected.len(),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}: {} errors", expected.len())),
        "{err}"
    );
}

/// Stacktape's own examples (its bucket page's basic usage, a worker connected to a
/// bucket and to SES), with a `network` added: they validate but for the `function`
/// resource type bosun-deploy does not offer, said once, at its type (not again where
/// its environment and connectTo name the bucket).
#[test]
fn the_seeds_examples_validate_but_for_types_not_offered() {
    let dir = TempDir::new("seeds");
    let text = "stack: seeds
network: { subnets: [subnet-1] }
resources:
  myBucket:
    type: bucket
  myFunction:
    type: function
    properties:
      packaging:
        type: stacktape-lambda-buildpack
        properties:
          entryfilePath: path/to/my/lambda.ts
      environment:
        - name: BUCKET_NAME
          value: $ResourceParam('myBucket', 'arn')
      connectTo:
        - myBucket
  myWorker:
    type: worker-service
    properties:
      packaging:
        type: stacktape-image-buildpack
        properties:
          entryfilePath: src/index.ts
      resources:
        cpu: 0.25
        memory: 512
      environment:
        - name: BUCKET_NAME
          value: $ResourceParam('myBucket', 'name')
      connectTo:
        - myBucket
        - aws:ses
";
    let file = write(&dir, "stacktape.yaml", text);
    let out = deploy(&["validate", "--stack", &file], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        errors,
        [format!("{file}:7:5: error: resources.myFunction.type: \"function\" is not a resource type bosun-deploy offers: it offers sqs-queue, worker-service, private-service, scheduled-job, bucket").as_str()],
        "{err}"
    );
    // Without it, the rest is a stack bosun-deploy deploys.
    let start = text.find("  myFunction:").unwrap();
    let end = text.find("  myWorker:").unwrap();
    let rest = write(
        &dir,
        "rest.yaml",
        &format!("{}{}", &text[..start], &text[end..]),
    );
    let out = deploy(&["validate", "--stack", &rest], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn each_rule_on_its_own() {
    let dir = TempDir::new("rules");
    let svc = |props: &str| {
        format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      resources: {{ cpu: 0.5, memory: 1024 }}\n{props}")
    };
    let job = |props: &str| {
        format!("{HEAD}  j:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      resources: {{ cpu: 0.5, memory: 1024 }}\n{props}")
    };
    let sized = |resources: &str| {
        format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      resources: {resources}\n")
    };
    // A worker connected to a queue, with these scaling settings.
    let queued = |scaling: &str| {
        format!("{HEAD}  q:\n    type: sqs-queue\n  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      connectTo: [q]\n      scaling: {{ {scaling} }}\n")
    };
    let registry = |r: &str| {
        format!("stack: orders\nregistry: {r}\nnetwork: {{ subnets: [subnet-1] }}\nresources: {{ q: {{ type: sqs-queue }} }}\n")
    };
    // The stack's tags and name, as AWS takes them.
    let tagged = |tags: &str| {
        format!("stack: orders\ntags: {tags}\nnetwork: {{ subnets: [subnet-1] }}\nresources: {{ q: {{ type: sqs-queue }} }}\n")
    };
    let named = |stack: &str| {
        format!("stack: {stack}\nnetwork: {{ subnets: [subnet-1] }}\nresources: {{ q: {{ type: sqs-queue }} }}\n")
    };
    let many = (0..49)
        .map(|i| format!("t{i}: v"))
        .collect::<Vec<_>>()
        .join(", ");
    let cases: Vec<(String, &str)> = vec![
        (tagged(&format!("{{ {many} }}")), "2:1: error: tags: 49 tags: at most 48 (AWS allows 50 a resource, and bosun-deploy adds bosun:stack and, on Auto Scaling groups, Name)"),
        (tagged("{ \"aws:team\": x }"), "2:9: error: tags.aws:team: tag key 'aws:team': the prefix aws: is AWS's own"),
        (tagged("{ \"bosun:stack\": x }"), "tag key 'bosun:stack': the prefix bosun: is bosun-deploy's own"),
        (tagged(&format!("{{ team: {} }}", "v".repeat(257))), "tag value of 'team' is 257 characters: at most 256"),
        (tagged("{ \"team#1\": x }"), "tag key 'team#1': only letters, digits, spaces and _ . : / = + - @"),
        (named("orders--eu"), "stack: 'orders--eu' must be 1..32 letters, digits or single '-' between them, starting with a letter"),
        (named("orders-"), "'orders-' must be 1..32 letters, digits or single '-' between them"),
        (sized("{ cpu: 1 }"), "9:20: error: resources.w.properties.resources.cpu: cpu without memory: give resources.memory too (with 1 vCPU, Fargate allows 2048..=8192 MiB); the default 0.25 vCPU / 512 MiB is for neither given"),
        (sized("{ memory: 4096 }"), "9:20: error: resources.w.properties.resources.memory: memory without cpu: give resources.cpu too (for 4096 MiB, Fargate allows 0.5, 1, 2 vCPU)"),
        (sized("{ ephemeralStorage: 20 }"), "resources.w.properties.resources.ephemeralStorage: 20 is out of range: allowed 21..=200"),
        (sized("{ ephemeralStorage: 201 }"), "201 is out of range: allowed 21..=200"),
        (sized("{ instanceTypes: [t3.small], ephemeralStorage: 30 }"), "ephemeralStorage is Fargate's task storage"),
        (job("      schedule: \"rate(1 minutes)\"\n"), "10:7: error: resources.j.properties.schedule: rate(1 minutes): a value of 1 takes the singular: rate(1 minute)"),
        (job("      schedule: \"cron(0 25 ? * MON *)\"\n"), "hours: 25 is out of range: allowed 0..23"),
        (job("      schedule: \"at(2026-02-30T00:00:00)\"\n"), "day 30 is not in 01..28"),
        (job("      schedule: \"rate(5 minutes)\"\n      maxEventAgeSeconds: 30\n"), "maxEventAgeSeconds: 30 is out of range: allowed 60..=86400"),
        (job("      schedule: \"rate(5 minutes)\"\n      timezone: Mars\n"), "'Mars' is not an IANA time zone name"),
        (job("      schedule: \"rate(5 minutes)\"\n      timeoutSeconds: 0\n"), "timeoutSeconds: 0 is out of range: allowed 1..=31536000"),
        (job("      schedule: \"rate(5 minutes)\"\n      taskCount: 2\n      singleton: true\n"), "12:7: error: resources.j.properties.singleton: singleton: true needs taskCount 1 (it is 2)"),
        (svc("      internalHealthCheck: { healthCheckCommand: [x], timeoutSeconds: 61 }\n"), "timeoutSeconds: 61 is out of range: allowed 2..=60"),
        (svc("      internalHealthCheck: { healthCheckCommand: [x], startPeriodSeconds: 301 }\n"), "startPeriodSeconds: 301 is out of range: allowed 0..=300"),
        (svc("      connectTo: [aws:sqs]\n"), "'aws:sqs' is not an AWS service connectTo knows: aws:ses"),
        (svc("      ports: [{ containerPort: 80 }, { containerPort: 80, protocol: tcp }]\n"), "resources.w.properties.ports.1: port 80/tcp is given twice"),
        (svc("      ports: [{ containerPort: 70000 }]\n"), "resources.w.properties.ports.0.containerPort"),
        (svc("      logging: { forwarding: { type: http-endpoint } }\n"), "resources.w.properties.logging.forwarding.properties: an http-endpoint forwarding needs properties.endpointUrl (an https:// URL)"),
        (svc("      logging: { forwarding: { type: http-endpoint, properties: { endpointUrl: \"http://x.example\" } } }\n"), "logging.forwarding.properties.endpointUrl: 'http://x.example': Firehose posts to https:// URLs only"),
        (svc("      logging: { forwarding: { type: datadog } }\n"), "logging.forwarding.properties: datadog needs properties.apiKey: $Secret('NAME') of a secret holding {\"api_key\": \"...\"}"),
        (svc("      logging: { forwarding: { type: new-relic, properties: { apiKey: abc123 } } }\n"), "logging.forwarding.properties.apiKey: the API key would be in plain text in the request"),
        (svc("      logging: { forwarding: { type: datadog, properties: { apiKey: \"$Secret('dd.key')\" } } }\n"), "Firehose reads a whole secret, as {\"api_key\": \"...\"}: write $Secret('NAME'), without a key or version"),
        (format!("{HEAD}  b:\n    type: bucket\n    properties: {{ lifecycleRules: [{{ type: expiration }}] }}\n"), "resources.b.properties.lifecycleRules.0.properties: type expiration needs properties.daysAfterUpload"),
        (format!("{HEAD}  b:\n    type: bucket\n    properties: {{ lifecycleRules: [{{ type: expiration, properties: {{ daysAfterUpload: 3, daysAfterVersioned: 2 }} }}] }}\n"), "lifecycleRules.0.properties.daysAfterVersioned: daysAfterVersioned is not for type expiration (it takes daysAfterUpload)"),
        (format!("{HEAD}  b:\n    type: bucket\n    properties: {{ lifecycleRules: [{{ type: non-current-version-expiration, properties: {{ daysAfterVersioned: 2 }} }}] }}\n"), "lifecycleRules.0.type: a bucket without versioning keeps no earlier versions to expire: set versioning: true"),
        (format!("{HEAD}  b:\n    type: bucket\n    properties: {{ public: true }}\n"), "resources.b.properties.public: unknown key 'public'"),
        (format!("{HEAD}  api:\n    type: private-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      ports: [{{ containerPort: 80 }}]\n  Api:\n    type: private-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      ports: [{{ containerPort: 81 }}]\n"), "'api' and 'Api' would have the same private DNS name api: rename one"),
        (svc("      ports: [{ containerPort: 80, protocol: http }]\n"), "resources.w.properties.ports.0.protocol"),
        (format!("{HEAD}  w:\n    type: private-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n"), "resources.w.properties: missing required key \"ports\""),
        (format!("{HEAD}  a:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      connectTo: [a]\n"), "resources.w.properties.connectTo.0: 'a' is a worker-service without ports: give it `ports`"),
        (svc("      scaling: { minInstances: 0, maxInstances: 2 }\n"), "10:18: error: resources.w.properties.scaling.minInstances: 0 needs a queue to wake the service: connect it to an sqs-queue (connectTo)"),
        (queued("minInstances: 0, maxInstances: 0"), "scaling.maxInstances: 0 is out of range: allowed 1 <= maxInstances"),
        (registry("https://ghcr.io/acme"), "2:1: error: registry: 'https://ghcr.io/acme': no scheme: expected HOST[:PORT]/NAMESPACE"),
        (registry("ghcr.io"), "'ghcr.io': no namespace"),
        (registry("ghcr.io/Acme"), "a namespace is lowercase letters"),
        (svc("      onDemandBase: 1\n"), "resources.w.properties.onDemandBase: onDemandBase is the on-demand part of a spot service: it needs spot: true"),
        (svc("      spot: true\n      onDemandBase: -1\n"), "onDemandBase: -1 is out of range: allowed 0..=100000"),
        (format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: image-buildpack, properties: {{ entryfilePath: main.rb }} }}\n"), "7:57: error: resources.w.properties.packaging.properties.entryfilePath: main.rb: auto-packaging knows Node.js (.js, .mjs, .cjs, .ts, .mts), Python (.py) and Go (.go) entry files"),
        (format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: stacktape-image-buildpack, properties: {{ baseImage: node:22 }} }}\n"), "resources.w.properties.packaging.properties: image-buildpack needs properties.entryfilePath"),
        (format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: external-buildpack, properties: {{ buildpacks: [x] }} }}\n"), "resources.w.properties.packaging.properties: external-buildpack needs properties.builder"),
        (format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: custom-dockerfile, properties: {{ buildContextPath: ., includesBosun: false }} }}\n"), "resources.w.properties.packaging.properties.includesBosun: includesBosun is for a prebuilt-image"),
        (format!("{HEAD}  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true, repositoryCredentialsSecretArn: ghcr }} }}\n      command: [run]\n"), "resources.w.properties.packaging.properties.repositoryCredentialsSecretArn: \"ghcr\" is not a Secrets Manager secret's ARN"),
        (sized("{ instanceTypes: [] }"), "resources.w.properties.resources.instanceTypes: give at least one instance type"),
        (sized("{ instanceTypes: [T3.small] }"), "9:36: error: resources.w.properties.resources.instanceTypes.0: \"T3.small\" is not an EC2 instance type"),
        (sized("{ instanceTypes: [t3.small, t3.small] }"), "resources.instanceTypes.1: t3.small is listed twice"),
        (sized("{ instanceTypes: [m6g.large] }"), "m6g.large is an arm64 type and the task's architecture is x86_64"),
        (sized("{ instanceTypes: [t3.small, t3.medium], enableWarmPool: true }"), "resources.enableWarmPool: a warm pool needs exactly one instance type (EC2 Auto Scaling has no warm pool for a group of mixed types); 2 are listed"),
        (sized("{ enableWarmPool: true }"), "resources.enableWarmPool: a warm pool holds EC2 instances: it needs resources.instanceTypes"),
        (sized("{ instanceTypes: [x2idn.large] }"), "bosun-deploy does not know the size of x2idn.large, so it cannot size a task to fill one: give resources.cpu and resources.memory"),
        (sized("{ instanceTypes: [t3.small], cpu: 1 }"), "resources.cpu: cpu without memory: give resources.memory too (or neither: a task then fills one instance of the smallest type)"),
        (sized("{ instanceTypes: [t3.small, t3.large], cpu: 1, memory: 4000 }"), "resources.memory: 4000 MiB does not fit a t3.small: a task can have up to 1664 MiB of it"),
        (sized("{ instanceTypes: [t3.small], cpu: 4, memory: 1024 }"), "resources.cpu: 4 vCPU does not fit a t3.small (2 vCPU)"),
        (sized("{ instanceTypes: [t3.small] }").replace("stack: orders", "stack: ecsorders"), "ECS refuses a capacity provider name that starts with aws, ecs or fargate"),
        (svc("      scaling: { minInstances: -1 }\n"), "minInstances: -1 is out of range: allowed 0 <= minInstances <= maxInstances"),
        (svc("      scaling: { minInstances: 2, idleMinutes: 5 }\n"), "scaling.idleMinutes: idleMinutes applies only to a service that scales to zero (minInstances: 0); minInstances is 2"),
        (queued("minInstances: 0, idleMinutes: 1441"), "scaling.idleMinutes: 1441 is out of range: allowed 1..=1440"),
        (svc("      scaling: { scalingPolicy: { keepBacklogPerInstanceUnder: 10 } }\n"), "a backlog target needs a queue"),
        (svc("      scaling: { scalingPolicy: { keepAvgCpuUtilizationUnder: 120 } }\n"), "120 is out of range: allowed above 0 up to 100"),
        (svc("      spot: true\n      colour: red\n"), "unknown key 'colour'"),
        (svc("      environment: [{ name: A, value: \"$Secret('')\" }]\n"), "expected $Secret('name'), $Secret('name.key') or $Secret('name.key', 'VERSION')"),
        (svc("      environment: [{ name: A, value: a }, { name: A, value: b }]\n"), "'A' is set twice"),
        (format!("{HEAD}  q:\n    type: sqs-queue\n    properties: {{ deadLetterQueue: {{ targetQueue: q, maxReceiveCount: 5 }} }}\n"), "a queue cannot be its own dead-letter queue"),
        (format!("{HEAD}  q:\n    type: sqs-queue\n    properties: {{ messageRetentionSeconds: 30 }}\n"), "messageRetentionSeconds: 30 is out of range: allowed 60..=1209600"),
        ("stack: a\nresources: { q: { type: sqs-queue }\n".into(), "not valid YAML"),
        ("stack: a\nstack: b\nresources: {}\n".into(), "2:1: error: (file): not valid YAML: duplicate key 'stack'"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let file = write(&dir, &format!("case{i}.yaml"), text);
        let out = deploy(&["validate", "--stack", &file], &[]);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "case {i} should fail: {text}\n{err}"
        );
        assert!(err.contains(needle), "case {i}: {needle:?} not in\n{err}");
        assert!(
            err.contains(&format!("{file}:")),
            "case {i}: no file:line:col in\n{err}"
        );
    }
}

#[test]
fn one_mistake_one_error_and_properties_that_can_default_are_optional() {
    let dir = TempDir::new("one");
    // A typo inside a worker's `resources:`: that key alone is reported, not its
    // siblings; a queue with no `properties` at all is valid.
    let text = format!("{HEAD}  q:\n    type: sqs-queue\n  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      resources: {{ cpu: 0.25, memroy: 512 }}\n");
    let file = write(&dir, "typo.yaml", &text);
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        errors,
        [format!(
            "{file}:11:31: error: resources.w.properties.resources.memroy: unknown key 'memroy' (did you mean 'memory'?)"
        )],
        "{err}"
    );
    let fixed = write(&dir, "fixed.yaml", &text.replace("memroy", "memory"));
    let out = deploy(&["validate", "--stack", &fixed], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // No resources at all: Fargate's smallest task, with its own 20 GiB of storage.
    let bare = write(
        &dir,
        "bare.yaml",
        &text.replace("      resources: { cpu: 0.25, memroy: 512 }\n", ""),
    );
    let out = deploy(
        &["render", "--stack", &bare],
        &[
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCOUNT_ID", "111122223333".into()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let td = &plan["taskDefinitions"][0];
    assert_eq!(
        (&td["cpu"], &td["memory"]),
        (&serde_json::json!("256"), &serde_json::json!("512"))
    );
    assert!(td.get("ephemeralStorage").is_none(), "{td}");
}

#[test]
fn unsafe_choices_are_warnings() {
    let dir = TempDir::new("warn");
    let text = format!("{HEAD}  q:\n    type: sqs-queue\n    properties: {{ visibilityTimeoutSeconds: 20 }}\n  w:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      resources: {{ cpu: 0.5, memory: 1024 }}\n      connectTo: [q]\n      stopTimeout: 60\n");
    let file = write(&dir, "warn.yaml", &text);
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("6:19: warning: resources.q.properties.visibilityTimeoutSeconds: visibility timeout 20 s is shorter than w's stopTimeout 60 s"), "{err}");
    assert!(!err.contains("deadLetterQueue"), "{err}");
    // A service that scales to zero on a queue with no dead-letter queue: a poison
    // message would wake it forever.
    let zero = text.replace(
        "      stopTimeout: 60\n",
        "      scaling: { minInstances: 0, maxInstances: 3 }\n",
    );
    let file = write(&dir, "zero.yaml", &zero);
    let out = deploy(&["validate", "--stack", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("6:5: warning: resources.q.properties: 'q' has no deadLetterQueue: a message that always fails goes back to the queue and wakes w from zero again and again"), "{err}");
}

/// What real AWS refuses, or does other than the reference says, rendered as AWS's
/// documentation asks: trust policies against the confused deputy, the scheduler's
/// PassRole and RunTask conditioned, names that fit AWS's limits for the longest
/// stack and key validation allows, a warm pool without reuse, room for a
/// deployment on EC2, and scale to zero guarded.
#[test]
fn what_real_aws_refuses_is_rendered_as_its_documentation_asks() {
    let dir = TempDir::new("realaws");
    let stack = "s".repeat(32);
    let key = "k".repeat(40);
    let text = format!(
        "stack: {stack}\nnetwork: {{ subnets: [subnet-1] }}\nresources:\n  {key}:\n    type: sqs-queue\n    properties: {{ fifo: true, deadLetterQueue: {{ maxReceiveCount: 3 }} }}\n  w{key2}:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      connectTo: [{key}]\n      resources: {{ instanceTypes: [t3.medium], enableWarmPool: true }}\n      scaling: {{ minInstances: 0, maxInstances: 3, scalingPolicy: {{ keepBacklogPerInstanceUnder: 5 }} }}\n  j{key2}:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      schedule: \"rate(1 hour)\"\n",
        key2 = &key[1..]
    );
    let file = write(&dir, "bosun.yaml", &text);
    let out = deploy(
        &["render", "--stack", &file],
        &[
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCOUNT_ID", "111122223333".into()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = |k: &str| r[k].as_array().unwrap().clone();
    // Names within AWS's limits: roles and schedules 64, queues 80.
    for role in list("roles") {
        let n = role["RoleName"].as_str().unwrap();
        assert!(n.len() <= 64, "role {n}");
        // Trust: the confused deputy kept out.
        let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
        match trust["Principal"]["Service"].as_str().unwrap() {
            "ecs-tasks.amazonaws.com" => {
                assert_eq!(
                    trust["Condition"]["StringEquals"]["aws:SourceAccount"], "111122223333",
                    "{n}"
                );
                if n.contains("-task") || n.len() == 64 && !n.contains("execution") {
                    assert_eq!(
                        trust["Condition"]["ArnLike"]["aws:SourceArn"],
                        "arn:aws:ecs:eu-west-1:111122223333:*",
                        "{n}"
                    );
                }
            }
            "scheduler.amazonaws.com" => {
                assert_eq!(
                    trust["Condition"]["StringEquals"]["aws:SourceAccount"], "111122223333",
                    "{n}"
                );
                assert_eq!(
                    trust["Condition"]["StringEquals"]["aws:SourceArn"],
                    format!(
                        "arn:aws:scheduler:eu-west-1:111122223333:schedule-group/bosun-{stack}"
                    ),
                    "{n}"
                );
            }
            "ec2.amazonaws.com" => {}
            other => panic!("{n}: trusted by {other}"),
        }
    }
    for sched in list("schedules") {
        assert!(sched["Name"].as_str().unwrap().len() <= 64, "{sched}");
    }
    for q in list("queues") {
        let n = q["QueueName"].as_str().unwrap();
        assert!(n.len() <= 80 && n.ends_with(".fifo"), "queue {n}");
    }
    // The scheduler role: PassRole to ECS tasks only, RunTask in the stack's cluster only.
    let scheduler = list("roles")
        .into_iter()
        .find(|x| x["RoleName"] == format!("{stack}-scheduler"))
        .unwrap();
    let doc = &scheduler["PolicyDocument"]["Statement"];
    let by_action = |a: &str| {
        doc.as_array()
            .unwrap()
            .iter()
            .find(|st| st["Action"][0] == a)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_action("iam:PassRole")["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    assert_eq!(
        by_action("ecs:RunTask")["Condition"]["ArnEquals"]["ecs:cluster"],
        format!("arn:aws:ecs:eu-west-1:111122223333:cluster/{stack}")
    );
    // EC2 capacity: a warm pool without reuse (ECS cannot), room for a deployment.
    let group = &list("autoScalingGroups")[0];
    assert_eq!(
        group["WarmPool"].get("InstanceReusePolicy"),
        None,
        "{group}"
    );
    assert_eq!(group["MaxSize"], 6);
    // Scale to zero: target tracking never scales in (only the idle policy, which
    // sees messages in flight, takes it to zero), and the wake policy only adds.
    for p in list("scalingPolicies") {
        if let Some(tt) = p
            .get("TargetTrackingScalingPolicyConfiguration")
            .filter(|v| !v.is_null())
        {
            assert_eq!(tt["DisableScaleIn"], true, "{p}");
        }
        let name = p["PolicyName"].as_str().unwrap();
        if name.ends_with("-wake") {
            assert_eq!(
                p["StepScalingPolicyConfiguration"]["AdjustmentType"], "ChangeInCapacity",
                "{p}"
            );
        }
        if name.ends_with("-idle") {
            assert_eq!(
                p["StepScalingPolicyConfiguration"]["AdjustmentType"], "ExactCapacity",
                "{p}"
            );
        }
    }
}

#[test]
fn render_wires_bosun_in() {
    let out = deploy(
        &["render", "--stack", EXAMPLE],
        &[
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCOUNT_ID", "111122223333".into()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let td = plan["taskDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["family"] == "orders-worker")
        .unwrap();
    let c = &td["containerDefinitions"][0];
    assert_eq!(
        c["entryPoint"],
        serde_json::json!(["/usr/local/bin/bosun", "--"])
    );
    assert_eq!(c["command"], serde_json::json!(["node", "dist/main.js"]));
    // The region, for bosun-aws and the worker (older ECS agents do not set it, and
    // EC2 capacity blocks instance metadata).
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        assert!(
            c["environment"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!({ "name": name, "value": "eu-west-1" })),
            "{name}: {}",
            c["environment"]
        );
    }
    assert_eq!(
        c["healthCheck"],
        serde_json::json!({ "command": ["CMD", "/usr/local/bin/bosun", "probe"], "interval": 20, "timeout": 5, "retries": 2, "startPeriod": 150 })
    );
    assert_eq!(c["stopTimeout"], 30);
    let env: std::collections::BTreeMap<String, String> = c["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        env["BOSUN_STOP_TIMEOUT"], "28",
        "bosun's grace a little shorter than ECS's"
    );
    assert_eq!(env["BOSUN_HEALTH_CMD"], "node dist/health.js");
    assert_eq!(env["BOSUN_HEALTH_INTERVAL"], "20");
    assert_eq!(env["BOSUN_METRICS"], "cloudwatch");
    let url = "https://sqs.eu-west-1.amazonaws.com/111122223333/orders-jobsQueue";
    assert_eq!(env["BOSUN_QUEUE_URL"], url);
    assert_eq!(env["QUEUE_URL"], url);
    assert_eq!(env["STP_JOBS_QUEUE_URL"], url);
    assert_eq!(
        env["STP_JOBS_QUEUE_ARN"],
        "arn:aws:sqs:eu-west-1:111122223333:orders-jobsQueue"
    );
    assert!(
        !env.contains_key("DB_PASSWORD"),
        "a secret must not be plaintext environment"
    );
    assert_eq!(
        c["secrets"],
        serde_json::json!([{ "name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:dbSecret:password::" }])
    );
    assert_eq!(
        c["logConfiguration"]["options"]["awslogs-group"],
        "/bosun/orders/worker"
    );
    assert_eq!(td["cpu"], "256");
    assert_eq!(td["memory"], "512");
    assert_eq!(td["runtimePlatform"]["cpuArchitecture"], "ARM64");
    // Least privilege: the worker's role reaches its queue and nothing else of SQS.
    let role = plan["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RoleName"] == "orders-worker-task")
        .unwrap();
    let sqs = role["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"][0] == "sqs:ReceiveMessage")
        .unwrap();
    assert_eq!(
        sqs["Resource"],
        serde_json::json!(["arn:aws:sqs:eu-west-1:111122223333:orders-jobsQueue"])
    );
    // connectTo aws:ses: sending email, from the account's identities in the region.
    let ses = role["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"][0] == "ses:SendEmail")
        .unwrap();
    assert_eq!(
        ses["Resource"],
        serde_json::json!([
            "arn:aws:ses:eu-west-1:111122223333:identity/*",
            "arn:aws:ses:eu-west-1:111122223333:configuration-set/*",
            "arn:aws:ses:eu-west-1:111122223333:template/*"
        ])
    );
    let job_role = plan["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RoleName"] == "orders-nightly-task")
        .unwrap();
    assert!(!job_role["PolicyDocument"].to_string().contains("ses:"));
    let exec = plan["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RoleName"] == "orders-execution")
        .unwrap();
    // The secret alone: `NAME-??????`, never `NAME*` (which is also `NAMEadmin-…`).
    let doc = exec["PolicyDocument"].to_string();
    assert!(doc.contains("secret:dbSecret-??????"), "{doc}");
    assert!(!doc.contains("secret:dbSecret*"), "{doc}");
    // The service: spot, circuit breaker with rollback, 100/200.
    let svc = &plan["services"][0];
    assert_eq!(
        svc["capacityProviderStrategy"],
        serde_json::json!([{ "capacityProvider": "FARGATE_SPOT", "weight": 1 }])
    );
    assert_eq!(
        svc["deploymentConfiguration"]["deploymentCircuitBreaker"],
        serde_json::json!({ "enable": true, "rollback": true })
    );
    assert_eq!(svc["deploymentConfiguration"]["minimumHealthyPercent"], 100);
    assert_eq!(svc["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(svc["desiredCount"], 1);
    // One target-tracking policy per metric, out fast, in cautiously.
    let pols = plan["scalingPolicies"].as_array().unwrap();
    assert_eq!(pols.len(), 3);
    for p in pols {
        let cfg = &p["TargetTrackingScalingPolicyConfiguration"];
        assert!(
            cfg["ScaleOutCooldown"].as_i64() < cfg["ScaleInCooldown"].as_i64(),
            "{p}"
        );
    }
    let backlog = pols
        .iter()
        .find(|p| p["PolicyName"] == "orders-worker-backlog")
        .unwrap();
    assert_eq!(
        backlog["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
            ["MetricName"],
        "BacklogPerTask"
    );
    // The job's time limit is bosun's --max-runtime.
    let nightly = plan["taskDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["family"] == "orders-nightly")
        .unwrap();
    assert!(
        nightly["containerDefinitions"][0]["environment"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "name": "BOSUN_MAX_RUNTIME", "value": "3600" })),
        "{nightly}"
    );
    // singleton: bosun's --singleton, and the task role may list the cluster's tasks.
    assert!(
        nightly["containerDefinitions"][0]["environment"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "name": "BOSUN_SINGLETON", "value": "true" })),
        "{nightly}"
    );
    let roles = plan["roles"].as_array().unwrap();
    let task_role = |name: &str| {
        roles
            .iter()
            .find(|r| r["RoleName"] == format!("orders-{name}-task"))
            .unwrap()["PolicyDocument"]["Statement"]
            .to_string()
    };
    assert!(
        task_role("nightly").contains(r#""Action":["ecs:ListTasks"]"#),
        "{}",
        task_role("nightly")
    );
    assert!(
        task_role("nightly").contains(r#""ecs:cluster":"arn:aws:ecs:"#),
        "{}",
        task_role("nightly")
    );
    assert!(
        !task_role("worker").contains("ecs:ListTasks"),
        "{}",
        task_role("worker")
    );
    // The schedule: ECS RunTask target with retries and event age.
    let sched = &plan["schedules"][0];
    assert_eq!(sched["ScheduleExpression"], "cron(0 3 * * ? *)");
    assert_eq!(sched["ScheduleExpressionTimezone"], "Europe/Prague");
    assert_eq!(
        sched["Target"]["RetryPolicy"],
        serde_json::json!({ "MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 3 })
    );
    assert_eq!(
        sched["Target"]["EcsParameters"]["TaskDefinitionArn"],
        "arn:aws:ecs:eu-west-1:111122223333:task-definition/orders-nightly"
    );
    // The queue's redrive.
    let q = plan["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["QueueName"] == "orders-jobsQueue")
        .unwrap();
    assert!(q["Attributes"]["RedrivePolicy"]
        .as_str()
        .unwrap()
        .contains("orders-jobsQueue-dlq"));
    assert_eq!(q["Attributes"]["VisibilityTimeout"], "120");
}

/// What the stack left in AWS, read straight from moto: one line per resource with
/// what matters of it.
fn snapshot(moto: &Moto) -> Vec<String> {
    py(moto, r#"
import boto3, sys, json
u = sys.argv[1]
c = lambda s: boto3.client(s, endpoint_url=u, region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
out = []
sqs = c('sqs')
for q in sqs.list_queues().get('QueueUrls', []):
    a = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['VisibilityTimeout', 'RedrivePolicy'])['Attributes']
    out.append('queue %s %s' % (q.rsplit('/', 1)[1], json.dumps(a, sort_keys=True)))
iam = c('iam')
for r in iam.list_roles()['Roles']:
    pols = iam.list_role_policies(RoleName=r['RoleName'])['PolicyNames']
    out.append('role %s %s %s' % (r['Path'], r['RoleName'], pols))
for g in c('logs').describe_log_groups()['logGroups']:
    out.append('log %s %s' % (g['logGroupName'], g.get('retentionInDays')))
ecs = c('ecs')
for a in ecs.list_task_definitions()['taskDefinitionArns']:
    out.append('taskdef %s' % a.rsplit('/', 1)[1])
for cl in ecs.list_clusters()['clusterArns']:
    for d in ecs.describe_clusters(clusters=[cl])['clusters']:
        out.append('cluster %s %s' % (d['clusterName'], d['status']))
    for s in ecs.list_services(cluster=cl)['serviceArns']:
        for d in ecs.describe_services(cluster=cl, services=[s])['services']:
            out.append('service %s %s %s' % (d['serviceName'], d['status'], d['taskDefinition'].rsplit('/', 1)[-1]))
aas = c('application-autoscaling')
for t in aas.describe_scalable_targets(ServiceNamespace='ecs')['ScalableTargets']:
    out.append('target %s %s..%s' % (t['ResourceId'], t['MinCapacity'], t['MaxCapacity']))
for p in aas.describe_scaling_policies(ServiceNamespace='ecs')['ScalingPolicies']:
    out.append('policy %s' % p['PolicyName'])
sch = c('scheduler')
for g in sch.list_schedule_groups()['ScheduleGroups']:
    if g['Name'] != 'default':
        out.append('group %s' % g['Name'])
for s in sch.list_schedules()['Schedules']:
    out.append('schedule %s/%s' % (s['GroupName'], s['Name']))
for d in c('cloudwatch').list_dashboards()['DashboardEntries']:
    out.append('dashboard %s' % d['DashboardName'])
print('\n'.join(sorted(out)))
"#)
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn apply_is_idempotent_changes_one_thing_and_deletes_only_its_own() {
    let w = World::new();
    let dir = TempDir::new("apply");
    let text = w.example();
    let file = write(&dir, "bosun.yaml", &text);
    let first_file = write(&dir, "first.yaml", &text);

    // A fresh account: diff lists what would be created (no ClusterNotFound).
    let out = w.deploy(&["diff", "--stack", &file]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(
        plan.contains("+ create ECS cluster orders-cluster"),
        "{plan}"
    );
    assert!(
        plan.contains("20 to create, 0 to update, 0 to delete"),
        "{plan}"
    );
    assert!(w.proxy.mutating().is_empty());

    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("applied: 20 changes"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // What was sent, as sent (moto does not keep a service's deployment settings).
    let create = w.proxy.sent("CreateService");
    let create: serde_json::Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(
        create["deploymentConfiguration"]["deploymentCircuitBreaker"],
        serde_json::json!({ "enable": true, "rollback": true })
    );
    assert_eq!(create["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(
        create["deploymentConfiguration"]["minimumHealthyPercent"],
        100
    );
    assert_eq!(
        create["capacityProviderStrategy"][0]["capacityProvider"],
        "FARGATE_SPOT"
    );
    assert!(create["clientToken"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let register = w.proxy.sent("RegisterScalableTarget");
    assert!(
        register.body.contains("bosun:stack"),
        "the target's tags are sent: {}",
        register.body
    );

    // Read every resource back through the SDK.
    let rt = runtime();
    let cfg = w.moto.sdk_config(&rt);
    let ecs = aws_sdk_ecs::Client::new(&cfg);
    rt.block_on(async {
        let td = ecs
            .describe_task_definition()
            .task_definition("orders-worker")
            .send()
            .await
            .unwrap();
        let td = td.task_definition().unwrap();
        let c = &td.container_definitions()[0];
        assert_eq!(c.entry_point(), ["/usr/local/bin/bosun", "--"]);
        assert_eq!(
            c.health_check().unwrap().command(),
            ["CMD", "/usr/local/bin/bosun", "probe"]
        );
        assert_eq!(c.stop_timeout(), Some(30));
        assert_eq!(c.secrets()[0].name(), "DB_PASSWORD");
        assert!(c
            .environment()
            .iter()
            .all(|e| e.name() != Some("DB_PASSWORD")));
        assert_eq!(td.cpu(), Some("256"));
        let svc = ecs
            .describe_services()
            .cluster("orders-cluster")
            .services("orders-worker")
            .send()
            .await
            .unwrap();
        let svc = &svc.services()[0];
        assert_eq!(svc.desired_count(), 1);
        assert_eq!(
            svc.network_configuration()
                .unwrap()
                .awsvpc_configuration()
                .unwrap()
                .subnets(),
            w.subnets.as_slice()
        );
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        let url = sqs
            .get_queue_url()
            .queue_name("orders-jobsQueue")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let attrs = attrs.attributes().unwrap();
        assert_eq!(
            attrs[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout],
            "120"
        );
        assert!(
            attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy]
                .contains("orders-jobsQueue-dlq")
        );
        let iam = aws_sdk_iam::Client::new(&cfg);
        let pol = iam
            .get_role_policy()
            .role_name("orders-worker-task")
            .policy_name("bosun")
            .send()
            .await
            .unwrap();
        assert!(
            pol.policy_document().contains("orders-jobsQueue"),
            "{}",
            pol.policy_document()
        );
    });
    let snap = snapshot(&w.moto);
    for needle in [
        "log /bosun/orders/nightly 30",
        "log /bosun/orders/worker 14",
        "policy orders-worker-backlog",
        "policy orders-worker-cpu",
        "policy orders-worker-memory",
        "target service/orders-cluster/orders-worker 1..5",
        "schedule bosun-orders/orders-nightly",
        "dashboard orders-worker",
        "taskdef orders-worker:1",
    ] {
        assert!(
            snap.iter().any(|l| l == needle),
            "{needle} not in {snap:#?}"
        );
    }

    // A second apply of the same file: no mutating call at all.
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("applied: 0 changes"),
        "{}",
        stdout(&out)
    );
    assert!(!w.proxy.actions().is_empty(), "nothing was recorded");
    assert_eq!(
        w.proxy.mutating(),
        Vec::<String>::new(),
        "mutating calls on a no-change apply"
    );
    let out = w.deploy(&["diff", "--stack", &file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("no changes"));

    // Change fields: diff says which, old → new; apply changes only them.
    let changed = write(
        &dir,
        "bosun.yaml",
        &text
            .replace(
                "logging: { retentionDays: 14 }",
                "logging: { retentionDays: 60 }",
            )
            .replace(
                "resources: { cpu: 0.25, memory: 512, architecture: arm64 }",
                "resources: { cpu: 0.25, memory: 1024, architecture: arm64, ephemeralStorage: 30 }",
            ),
    );
    let out = w.deploy(&["diff", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(1));
    let plan = stdout(&out);
    assert!(
        plan.contains("~ update log group /bosun/orders/worker\n      retentionInDays: 14 → 60"),
        "{plan}"
    );
    assert!(
        plan.contains("~ update task definition orders-worker\n      ephemeralStorage: (none) → {\"sizeInGiB\":30}\n      memory: 512 → 1024"),
        "{plan}"
    );
    assert!(
        plan.contains("~ update ECS service orders-worker"),
        "the service rolls to the new revision: {plan}"
    );
    let out = w.deploy(&["diff", "--output", "json", "--stack", &changed]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let td = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "task definition")
        .unwrap();
    assert_eq!(td["action"], "update");
    assert_eq!(
        td["fields"],
        serde_json::json!([
            { "path": "ephemeralStorage", "new": { "sizeInGiB": 30 } },
            { "path": "memory", "old": "512", "new": "1024" }
        ])
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut mutating = w.proxy.mutating();
    mutating.sort();
    // The three changes, under the stack's lock (taken, then released).
    assert_eq!(
        mutating,
        [
            "DeleteParameter",
            "PutParameter",
            "PutRetentionPolicy",
            "RegisterTaskDefinition",
            "UpdateService"
        ]
    );
    let out = w.deploy(&["diff", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // Status, then delete: everything of the stack goes, the rest stays.
    let out = w.deploy(&["status", "--stack", &changed]);
    let status = stdout(&out);
    assert!(
        status.starts_with("stack orders: AWS matches the file\n"),
        "{status}"
    );
    let out = w.deploy(&["status", "--stack", &first_file]);
    assert!(
        stdout(&out).starts_with("stack orders: 3 changes pending"),
        "{}",
        stdout(&out)
    );
    assert!(
        status.contains("worker (worker-service orders-worker): desired 1"),
        "{status}"
    );
    assert!(
        status.contains("scaling policy orders-worker-backlog target 100"),
        "{status}"
    );
    assert!(
        status.contains("jobsQueue (sqs-queue orders-jobsQueue): visible 0 in flight 0\n  dead letters (orders-jobsQueue-dlq): 0 visible, 0 in flight\n"),
        "{status}"
    );
    rt.block_on(async {
        aws_sdk_sqs::Client::new(&cfg)
            .create_queue()
            .queue_name("orders-not-ours")
            .send()
            .await
            .unwrap();
    });
    // ECS refuses to delete a cluster while its services drain: delete waits.
    w.proxy
        .fail("DeleteCluster", 2, "ClusterContainsTasksException");
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        w.proxy
            .actions()
            .iter()
            .filter(|a| *a == "DeleteCluster")
            .count(),
        3
    );
    let left: Vec<String> = snapshot(&w.moto)
        .into_iter()
        // Deleted services and clusters stay listed by moto as INACTIVE.
        .filter(|l| {
            let ecs = l.starts_with("service ") || l.starts_with("cluster ");
            !ecs || l.ends_with(" ACTIVE") || l.contains(" ACTIVE ")
        })
        .collect();
    assert_eq!(
        left,
        ["queue orders-not-ours {\"VisibilityTimeout\": \"30\"}"],
        "delete removed only the stack's"
    );
    // And again: nothing left to delete.
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());
}

#[test]
fn a_refused_read_stops_apply_before_any_change() {
    let w = World::new();
    let dir = TempDir::new("refused");
    let file = write(&dir, "bosun.yaml", &w.example());
    for (action, call) in [
        ("GetRole", "IAM GetRole"),
        ("GetQueueUrl", "SQS GetQueueUrl"),
        ("DescribeLogGroups", "Logs DescribeLogGroups"),
        ("DescribeServices", "ECS DescribeServices"),
        ("ListTaskDefinitions", "ECS ListTaskDefinitions"),
        ("GetScheduleGroup", "Scheduler GetScheduleGroup"),
        ("ListRoles", "IAM ListRoles"),
        ("ListQueues", "SQS ListQueues"),
        ("DescribeSubnets", "EC2 DescribeSubnets"),
        ("GetCallerIdentity", "STS GetCallerIdentity"),
    ] {
        w.proxy.allow_all();
        w.proxy.deny(action);
        w.proxy.record();
        let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{action}: {err}");
        assert!(
            err.contains(call) && err.contains("AccessDenied"),
            "{action}: {err}"
        );
        assert_eq!(
            w.proxy.mutating(),
            Vec::<String>::new(),
            "{action}: a refused read must stop apply"
        );
        // diff fails the same way instead of calling things absent.
        let out = w.deploy(&["diff", "--stack", &file]);
        assert_eq!(out.status.code(), Some(4), "{action}: {}", stdout(&out));
    }
}

#[test]
fn throttled_calls_are_retried() {
    let w = World::new();
    let dir = TempDir::new("throttle");
    let file = write(&dir, "bosun.yaml", &w.example());
    for a in [
        "GetRole",
        "CreateQueue",
        "RegisterTaskDefinition",
        "CreateService",
        "PutRolePolicy",
        "DescribeServices",
    ] {
        w.proxy.throttle(a, 2);
    }
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let actions = w.proxy.actions();
    let count = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(
        count("CreateService"),
        3,
        "two throttled attempts, then the one that went through"
    );
    assert_eq!(
        count("CreateQueue"),
        2 + 2,
        "two queues, two throttled attempts"
    );
    let out = w.deploy(&["diff", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

fn workers(stack: &str, n: usize, subnets: &[String]) -> String {
    let mut s = format!(
        "stack: {stack}\ncluster: shared\nnetwork: {{ subnets: [{}] }}\nresources:\n",
        subnets.join(", ")
    );
    for i in 0..n {
        s.push_str(&format!("  w{i}:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      resources: {{ cpu: 0.25, memory: 512 }}\n"));
    }
    s
}

#[test]
fn delete_pages_services_and_removes_only_the_stacks() {
    let w = World::new();
    w.proxy.page_lists(true);
    let dir = TempDir::new("paged");
    let ours = write(&dir, "ours.yaml", &workers("orders", 12, &w.subnets));
    let theirs = write(&dir, "theirs.yaml", &workers("billing", 3, &w.subnets));
    for f in [&theirs, &ours] {
        let out = w.deploy(&["apply", "--no-wait", "--stack", f]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // Our cluster is the first stack's (billing created it): ours uses it as it is.
    let out = w.deploy(&["diff", "--stack", &ours]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &ours]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pages = w
        .proxy
        .actions()
        .iter()
        .filter(|a| *a == "ListServices")
        .count();
    assert!(pages >= 2, "ListServices read page by page ({pages} calls)");
    let active: Vec<String> = snapshot(&w.moto)
        .into_iter()
        .filter(|l| l.starts_with("service ") && l.contains(" ACTIVE "))
        .collect();
    assert_eq!(
        active,
        [
            "service billing-w0 ACTIVE billing-w0:1",
            "service billing-w1 ACTIVE billing-w1:1",
            "service billing-w2 ACTIVE billing-w2:1"
        ]
    );
    assert!(
        w.proxy
            .mutating()
            .iter()
            .filter(|a| *a == "DeleteService")
            .count()
            == 12
    );
    assert!(
        !w.proxy.mutating().iter().any(|a| a == "DeleteCluster"),
        "the cluster is billing's"
    );
    // Ours again in billing's cluster; then billing, which made the cluster, goes:
    // its services are deleted, and the cluster, where ours run, is let go of (no
    // longer billing's), not deleted.
    let out = w.deploy(&["apply", "--no-wait", "--stack", &ours]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &theirs]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("ECS cluster shared: not deleted, other work runs there (service orders-w"),
        "{}",
        stderr(&out)
    );
    let mutating = w.proxy.mutating();
    assert!(
        !mutating.iter().any(|a| a == "DeleteCluster"),
        "{mutating:?}"
    );
    assert_eq!(
        mutating.iter().filter(|a| *a == "DeleteService").count(),
        3,
        "{mutating:?}"
    );
    let ours_left = snapshot(&w.moto)
        .into_iter()
        .filter(|l| l.starts_with("service orders-") && l.contains(" ACTIVE "))
        .count();
    assert_eq!(ours_left, 12);
    // billing's file would make its services again; ours deploys there as it is.
    let out = w.deploy(&["diff", "--stack", &theirs]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let out = w.deploy(&["diff", "--stack", &ours]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_resource_taken_out_of_the_file_is_shown_then_deleted() {
    let w = World::new();
    let dir = TempDir::new("removed");
    let two = format!("{HEAD}  a:\n    type: sqs-queue\n  b:\n    type: sqs-queue\n    properties: {{ visibilityTimeoutSeconds: 60 }}\n");
    let file = write(&dir, "bosun.yaml", &two);
    let out = w.deploy(&["apply", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let one = write(
        &dir,
        "bosun.yaml",
        &format!("{HEAD}  a:\n    type: sqs-queue\n"),
    );
    let out = w.deploy(&["diff", "--stack", &one]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("- delete queue orders-b"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("orders-a"), "{}", stdout(&out));
    let out = w.deploy(&["apply", "--stack", &one]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        snapshot(&w.moto),
        ["queue orders-a {\"VisibilityTimeout\": \"30\"}"]
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--stack", &one]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());
}

#[test]
fn apply_waits_says_what_changes_and_ends_with_its_own_exit_codes() {
    let w = World::new();
    let dir = TempDir::new("wait");
    let file = write(
        &dir,
        "bosun.yaml",
        &format!("stack: orders\nnetwork: {{ subnets: [{}] }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n", w.subnets[0]),
    );
    // In progress past --timeout: exit 6, each event said once, the state line once.
    w.proxy.rollout(
        "IN_PROGRESS",
        &[
            "(service orders-worker) has started 1 tasks",
            "(service orders-worker) registered 1 targets",
        ],
    );
    let out = w.deploy(&["apply", "--stack", &file, "--timeout", "6"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("deployment of orders-worker"), "{err}");
    assert!(err.contains("did not finish within 6s"), "{err}");
    assert_eq!(err.matches("has started 1 tasks").count(), 1, "{err}");
    assert_eq!(
        err.matches("orders-worker: IN_PROGRESS desired").count(),
        1,
        "{err}"
    );
    // The older event first, as they happened.
    let (a, b) = (
        err.find("registered 1 targets").unwrap(),
        err.find("has started 1 tasks").unwrap(),
    );
    assert!(a < b, "{err}");
    // A task that holds scale-in protection holds the deployment: the timeout names it.
    let out = w.deploy(&["run", "worker", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let task = stdout(&out).trim().to_owned();
    w.proxy.protect(&task);
    let protected = write(
        &dir,
        "protected.yaml",
        &std::fs::read_to_string(&file)
            .unwrap()
            .replace("command: [run]", "command: [run, --fast]"),
    );
    let out = w.deploy(&["apply", "--stack", &protected, "--timeout", "6"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let id = task.rsplit('/').next().unwrap();
    assert!(
        stderr(&out).contains(&format!(
            "(tasks protected from scale-in hold it: {id} until 2026-"
        )),
        "{}",
        stderr(&out)
    );
    // Rolled back by the circuit breaker: exit 4, said so.
    w.proxy.rollout("FAILED", &[]);
    let changed = write(
        &dir,
        "bosun.yaml",
        &format!("stack: orders\nnetwork: {{ subnets: [{}] }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:2, includesBosun: true }} }}\n      command: [run]\n", w.subnets[0]),
    );
    let out = w.deploy(&["apply", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deployment of orders-worker failed and was rolled back"),
        "{}",
        stderr(&out)
    );
    // Done: a summary line, exit 0.
    w.proxy.rollout("COMPLETED", &[]);
    let again = write(
        &dir,
        "bosun.yaml",
        &format!("stack: orders\nnetwork: {{ subnets: [{}] }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:3, includesBosun: true }} }}\n      command: [run]\n", w.subnets[0]),
    );
    let out = w.deploy(&["apply", "--stack", &again]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("orders-worker deployed in"),
        "{}",
        stderr(&out)
    );
}

/// The stack's lock: an apply with changes waits for or refuses another's lock, naming
/// its holder; one with nothing to change takes none; only `--force-unlock ID` of that
/// lock breaks it; the lock is gone after a run.
#[test]
fn a_locked_stack_is_refused_and_broken_only_by_its_id() {
    let w = World::new();
    let dir = TempDir::new("lock");
    let one = write(
        &dir,
        "one.yaml",
        &format!("{HEAD}  a:\n    type: sqs-queue\n"),
    );
    let two = write(
        &dir,
        "two.yaml",
        &format!("{HEAD}  a:\n    type: sqs-queue\n  b:\n    type: sqs-queue\n"),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--stack", &one]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mutating = w.proxy.mutating();
    assert_eq!(
        mutating.first().map(String::as_str),
        Some("PutParameter"),
        "{mutating:?}"
    );
    assert_eq!(
        mutating.last().map(String::as_str),
        Some("DeleteParameter"),
        "{mutating:?}"
    );
    let lock = |code: &str| {
        py(
            &w.moto,
            &format!("import boto3,sys,json; s=boto3.client('ssm', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')\n{code}"),
        )
    };
    let missing = "try:\n    print(s.get_parameter(Name='/bosun/orders/lock')['Parameter']['Value'])\nexcept s.exceptions.ParameterNotFound:\n    print('none')";
    assert_eq!(lock(missing).trim(), "none");
    // Another run holds it.
    lock("s.put_parameter(Name='/bosun/orders/lock', Type='String', Value=json.dumps({'id': 'abcdef0123456789', 'who': 'ana@ci-7 (pid 41)', 'since': '2026-12-06T10:00:00Z', 'verb': 'apply'}))");
    w.proxy.record();
    let out = w.deploy(&["apply", "--stack", &two]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stack orders is locked: apply by ana@ci-7 (pid 41) since 2026-12-06T10:00:00Z (lock id abcdef0123456789); nothing was changed (wait for it with --wait-lock SECS, or, if that run died, break the lock with --force-unlock abcdef0123456789)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        w.proxy.mutating(),
        ["PutParameter"],
        "only the refused take"
    );
    // Nothing to change: no lock, no mutating call.
    w.proxy.record();
    let out = w.deploy(&["apply", "--stack", &one]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new());
    // Waiting for it, bounded.
    w.says(
        &["apply", "--stack", &two, "--wait-lock", "3"],
        4,
        "waiting for the lock of stack orders: apply by ana@ci-7",
    );
    // Only its own id breaks it.
    let unlock = |id: &'static str| ["apply", "--stack", &two, "--force-unlock", id];
    w.says(
        &unlock("0000000000000000"),
        2,
        "holds no lock with id 0000000000000000",
    );
    w.says(
        &unlock("abcdef0123456789"),
        0,
        "lock abcdef0123456789 of stack orders broken",
    );
    assert_eq!(lock(missing).trim(), "none");
    let out = w.deploy(&["diff", "--stack", &two]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A queue that holds messages is not deleted by apply or delete without
/// `--allow-data-loss`, and diff says what it holds; delete needs `--yes` off a
/// terminal.
#[test]
fn deleting_a_queue_that_holds_messages_needs_allow_data_loss() {
    let w = World::new();
    let dir = TempDir::new("dataloss");
    let two = write(
        &dir,
        "two.yaml",
        &format!("{HEAD}  a:\n    type: sqs-queue\n  b:\n    type: sqs-queue\n"),
    );
    let one = write(
        &dir,
        "one.yaml",
        &format!("{HEAD}  a:\n    type: sqs-queue\n"),
    );
    let out = w.deploy(&["apply", "--stack", &two]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    py(
        &w.moto,
        "import boto3,sys; q=boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); u=q.get_queue_url(QueueName='orders-b')['QueueUrl']; [q.send_message(QueueUrl=u, MessageBody=str(i)) for i in range(2)]",
    );
    let out = w.deploy(&["diff", "--stack", &one]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("- delete queue orders-b\n      (holds 2 messages (2 visible, 0 in flight, 0 delayed): deleting it loses them; needs --allow-data-loss)"),
        "{}",
        stdout(&out)
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--stack", &one]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the plan deletes what holds data: queue orders-b (2 messages); nothing was changed (pass --allow-data-loss to delete them anyway)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        w.proxy.mutating(),
        ["PutParameter", "DeleteParameter"],
        "the lock alone"
    );
    let out = w.deploy(&["delete", "--stack", &one]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pass --yes to confirm"),
        "{}",
        stderr(&out)
    );
    let out = w.deploy(&["delete", "--yes", "--stack", &two]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = w.deploy(&["apply", "--stack", &one, "--allow-data-loss"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        snapshot(&w.moto),
        ["queue orders-a {\"VisibilityTimeout\": \"30\"}"]
    );
}

/// EventBridge Scheduler refuses a schedule whose role it cannot assume yet (a role
/// made a moment ago: IAM is eventually consistent); apply waits that out, and only
/// that: another ValidationException stops it.
#[test]
fn a_schedule_refused_while_its_new_role_settles_is_retried() {
    let w = World::new();
    let dir = TempDir::new("role-settles");
    let job = |schedule: &str| {
        format!(
            "stack: nightly\nnetwork: {{ subnets: [{}] }}\nresources:\n  report:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      schedule: \"{schedule}\"\n",
            w.subnets[0]
        )
    };
    let file = write(&dir, "bosun.yaml", &job("cron(0 3 * * ? *)"));
    let role =
        "The execution role you provide must allow AWS EventBridge Scheduler to assume the role.";
    w.proxy
        .fail_with("CreateSchedule", 2, "ValidationException", role);
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let creates = w
        .proxy
        .actions()
        .iter()
        .filter(|a| *a == "CreateSchedule")
        .count();
    assert_eq!(creates, 3, "two refusals, then the one that went through");
    let out = w.deploy(&["diff", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Any other ValidationException is the file's mistake or AWS's: not retried.
    w.proxy.fail_with(
        "UpdateSchedule",
        5,
        "ValidationException",
        "Invalid Schedule Expression",
    );
    let changed = write(&dir, "bosun.yaml", &job("cron(0 4 * * ? *)"));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &changed]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Invalid Schedule Expression"),
        "{}",
        stderr(&out)
    );
    let updates = w
        .proxy
        .actions()
        .iter()
        .filter(|a| *a == "UpdateSchedule")
        .count();
    assert_eq!(updates, 1);
}

/// The longest names validation allows and the widest tag set, applied: every request
/// within AWS's limits (lengths, patterns, enums, list sizes of botocore's models), and
/// a second apply sends nothing.
#[test]
fn the_longest_names_and_the_widest_tags_are_valid_requests() {
    let w = World::new();
    let dir = TempDir::new("longest");
    let stack = format!("l{}", "o".repeat(31));
    let k = |c: &str| format!("{c}{}", "x".repeat(39));
    let tags: Vec<String> = (0..48)
        .map(|i| format!("\"{}{i:02}\": \"{}\"", "k".repeat(126), "v".repeat(256)))
        .collect();
    let text = format!(
        "stack: {stack}\ntags: {{ {} }}\nnetwork: {{ subnets: [{}] }}\nresources:\n  {q}:\n    type: sqs-queue\n    properties: {{ fifo: true, deadLetterQueue: {{ maxReceiveCount: 3 }} }}\n  {w}:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      connectTo: [{q}]\n      resources: {{ instanceTypes: [t3.medium] }}\n      scaling: {{ minInstances: 0, maxInstances: 3, scalingPolicy: {{ keepBacklogPerInstanceUnder: 5, keepAvgCpuUtilizationUnder: 70 }} }}\n  {j}:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      schedule: \"rate(1 hour)\"\n",
        tags.join(", "),
        w.subnets[0],
        q = k("q"),
        w = k("w"),
        j = k("j"),
    );
    let file = write(&dir, "bosun.yaml", &text);
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_with_models(&dir, &w.proxy.recorded());
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new(), "{}", stdout(&out));
    let out = w.deploy(&["delete", "--yes", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A secret is named to ECS by its complete ARN, as Secrets Manager made it (a name
/// such as `db-secret` would otherwise read as a complete ARN), and the execution role
/// may read that secret alone; the stack's own cluster has Container Insights on (the
/// dashboard's running-task count is one of its metrics).
#[test]
fn secrets_go_by_their_complete_arn_and_the_cluster_has_container_insights() {
    let w = World::new();
    let dir = TempDir::new("secret-arn");
    let file = write(&dir, "bosun.yaml", &w.example());
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let arn = py(&w.moto, "import boto3,sys; print(boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').describe_secret(SecretId='dbSecret')['ARN'])");
    let arn = arn.trim();
    assert!(
        arn.len() > "dbSecret".len() + 7 && arn.contains(":secret:dbSecret-"),
        "{arn}"
    );
    let td: serde_json::Value = w
        .proxy
        .recorded()
        .into_iter()
        .filter(|r| r.action == "RegisterTaskDefinition")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .find(|t: &serde_json::Value| t["family"] == "orders-worker")
        .unwrap();
    assert_eq!(
        td["containerDefinitions"][0]["secrets"],
        serde_json::json!([{ "name": "DB_PASSWORD", "valueFrom": format!("{arn}:password::") }])
    );
    let grant = w
        .proxy
        .recorded()
        .into_iter()
        .filter(|r| r.action == "PutRolePolicy" && r.body.contains("orders-execution"))
        .map(|r| r.form()["PolicyDocument"].clone())
        .next()
        .unwrap();
    assert!(grant.contains(&format!("\"{arn}\"")), "{grant}");
    let cluster: serde_json::Value =
        serde_json::from_str(&w.proxy.sent("CreateCluster").body).unwrap();
    assert_eq!(
        cluster["settings"],
        serde_json::json!([{ "name": "containerInsights", "value": "enabled" }])
    );
    // And a second apply sends nothing: AWS keeps both as sent.
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new(), "{}", stdout(&out));
}

/// Ctrl-C during an apply stops its calls, lets go of the stack's lock and exits 130;
/// the next apply needs no --force-unlock and finishes the job.
#[test]
fn an_interrupted_apply_releases_its_lock() {
    let w = World::new();
    let dir = TempDir::new("interrupted");
    let file = write(&dir, "bosun.yaml", &w.example());
    w.proxy.latency(std::time::Duration::from_millis(100));
    let mut cmd = Command::new(DEPLOY);
    cmd.args(["apply", "--no-wait", "--stack", &file])
        .envs(w.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // After the lock and two changes.
    w.proxy.interrupt_after(3, child.id() as i32);
    let out = wait_output(child, std::time::Duration::from_secs(60));
    w.proxy.latency(std::time::Duration::ZERO);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("interrupted by SIGINT: what was done stays done, the lock is released"),
        "{}",
        stderr(&out)
    );
    let lock = py(&w.moto, "import boto3,sys; s=boto3.client('ssm', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')\ntry:\n    s.get_parameter(Name='/bosun/orders/lock'); print('held')\nexcept s.exceptions.ParameterNotFound:\n    print('none')");
    assert_eq!(lock.trim(), "none");
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.reapply_changes_nothing(&file);
}

/// `delete` on a terminal shows the plan and asks: only `yes` deletes.
#[test]
fn delete_on_a_terminal_asks_first() {
    let w = World::new();
    let dir = TempDir::new("ask");
    let file = write(
        &dir,
        "bosun.yaml",
        &format!("{HEAD}  a:\n    type: sqs-queue\n"),
    );
    let out = w.deploy(&["apply", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // util-linux's script(1) gives bosun-deploy a terminal; the answer comes on it.
    let on_a_terminal = |answer: &str| {
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("{DEPLOY} delete --stack {file}"),
            "/dev/null",
        ])
        .envs(w.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(answer.as_bytes()).unwrap();
        let out = wait_output(child, std::time::Duration::from_secs(60));
        drop(stdin);
        out
    };
    let out = on_a_terminal("no\n");
    let shown = stdout(&out);
    assert!(shown.contains("- delete queue orders-a"), "{shown}");
    assert!(shown.contains("Type yes:"), "{shown}");
    assert!(
        shown.contains("not confirmed: nothing was deleted"),
        "{shown}"
    );
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert_eq!(
        snapshot(&w.moto),
        ["queue orders-a {\"VisibilityTimeout\": \"30\"}"]
    );
    let out = on_a_terminal("yes\n");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let left = snapshot(&w.moto);
    assert!(left.iter().all(|l| l.is_empty()), "{left:?}");
}

/// An apply after one that was killed: the dead run's lock (if it held it) is broken
/// by its id, as its holder's refusal names it, and the apply goes on.
fn apply_after_kill(w: &World, file: &str) -> Output {
    let out = w.deploy(&["apply", "--no-wait", "--stack", file]);
    let err = stderr(&out);
    if out.status.code() != Some(4) || !err.contains("is locked") {
        return out;
    }
    let id: String = err
        .split("--force-unlock ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert_eq!(id.len(), 16, "{err}");
    w.deploy(&["apply", "--no-wait", "--stack", file, "--force-unlock", &id])
}

#[test]
fn apply_killed_at_any_point_is_finished_by_the_next() {
    // What a clean apply leaves.
    let clean = {
        let w = World::new();
        let dir = TempDir::new("clean");
        let file = write(&dir, "bosun.yaml", &w.example());
        let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        snapshot(&w.moto)
    };
    for n in [1, 4, 8, 12, 16] {
        let w = World::new();
        let dir = TempDir::new("killed");
        let file = write(&dir, "bosun.yaml", &w.example());
        let mut cmd = Command::new(DEPLOY);
        cmd.args(["apply", "--no-wait", "--stack", &file])
            .envs(w.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        w.proxy.kill_after(n, child.id() as i32);
        let out = wait_output(child, std::time::Duration::from_secs(60));
        assert_eq!(out.status.code(), None, "killed after mutating call {n}");
        w.proxy.clear_kill();
        let out = apply_after_kill(&w, &file);
        assert_eq!(
            out.status.code(),
            Some(0),
            "after a kill at {n}: {}",
            stderr(&out)
        );
        assert_eq!(snapshot(&w.moto), clean, "after a kill at {n}");
        w.proxy.record();
        let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            w.proxy.mutating(),
            Vec::<String>::new(),
            "third apply after a kill at {n}"
        );
    }
}

/// An EC2 stack's apply killed right after each of its mutating calls (an instance
/// profile without its role, a group without its warm pool, a provider not yet on the
/// cluster...) is finished by the next apply, after which a third sends nothing.
#[test]
fn an_ec2_apply_killed_at_any_point_is_finished_by_the_next() {
    let stack = |w: &World| {
        format!(
            "stack: orders\nnetwork: {{ subnets: [{}] }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      resources: {{ instanceTypes: [t3.medium], enableWarmPool: true }}\n",
            w.subnets[0]
        )
    };
    // How many mutating calls a clean apply makes.
    let total = {
        let w = World::new();
        let dir = TempDir::new("ec2-clean");
        let file = write(&dir, "bosun.yaml", &stack(&w));
        w.proxy.record();
        let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        w.proxy.mutating().len() as u32
    };
    assert!(total > 10, "{total}");
    for n in 1..total {
        let w = World::new();
        let dir = TempDir::new("ec2-killed");
        let file = write(&dir, "bosun.yaml", &stack(&w));
        let mut cmd = Command::new(DEPLOY);
        cmd.args(["apply", "--no-wait", "--stack", &file])
            .envs(w.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap();
        w.proxy.kill_after(n, child.id() as i32);
        let out = wait_output(child, std::time::Duration::from_secs(60));
        assert_eq!(out.status.code(), None, "killed after mutating call {n}");
        w.proxy.clear_kill();
        let out = apply_after_kill(&w, &file);
        assert_eq!(
            out.status.code(),
            Some(0),
            "after a kill at {n}: {}",
            stderr(&out)
        );
        w.proxy.record();
        let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            w.proxy.mutating(),
            Vec::<String>::new(),
            "third apply after a kill at {n}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn the_account_is_the_callers() {
    let w = World::with_moto(Moto::start_with(&[("MOTO_ACCOUNT_ID", "210987654321")]));
    w.proxy.deny("GetUser");
    let dir = TempDir::new("account");
    let file = write(&dir, "bosun.yaml", &w.example());
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("in account 210987654321"),
        "{}",
        stdout(&out)
    );
    let put = w
        .proxy
        .recorded()
        .into_iter()
        .filter(|r| r.action == "PutRolePolicy")
        .map(|r| r.body)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(put.contains("210987654321"), "{put}");
    assert!(!put.contains("123456789012"), "no made-up account: {put}");
    // A stack that names another account changes nothing.
    let other = write(
        &dir,
        "other.yaml",
        &w.example()
            .replace("stack: orders", "stack: orders\naccount: \"111111111111\""),
    );
    w.refuses(
        &["apply", "--no-wait", "--stack", &other],
        "the stack is for account 111111111111, but the credentials are account 210987654321's",
    );
}

#[test]
fn preflight_and_ownership_refuse_before_any_change() {
    let w = World::new();
    let dir = TempDir::new("preflight");
    let file = write(
        &dir,
        "bosun.yaml",
        &w.example().replace(
            "securityGroups: []",
            "securityGroups: [sg-0123456789abcdef0]",
        ),
    );
    w.refuses(
        &["apply", "--no-wait", "--stack", &file],
        &format!("security group sg-0123456789abcdef0 ({file}:8:"),
    );
    // A queue with the stack's name that is not the stack's is never touched.
    py(&w.moto, "import boto3,sys; boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_queue(QueueName='orders-jobsQueue')");
    let file = write(&dir, "bosun.yaml", &w.example());
    w.refuses(
        &["apply", "--no-wait", "--stack", &file],
        "queue orders-jobsQueue exists but is not this stack's (no bosun:stack tag)",
    );
}

#[test]
fn logs_prints_the_resources_events() {
    let moto = Moto::start();
    let env = moto.env();
    let rt = runtime();
    let cfg = moto.sdk_config(&rt);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    rt.block_on(async {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&cfg);
        logs.create_log_group()
            .log_group_name("/bosun/orders/worker")
            .send()
            .await
            .unwrap();
        logs.create_log_stream()
            .log_group_name("/bosun/orders/worker")
            .log_stream_name("worker/app/abc")
            .send()
            .await
            .unwrap();
        let ev = |ms: i64, m: &str| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(ms)
                .message(m)
                .build()
                .unwrap()
        };
        logs.put_log_events()
            .log_group_name("/bosun/orders/worker")
            .log_stream_name("worker/app/abc")
            .log_events(ev(now - 3_600_000, "an hour ago"))
            .log_events(ev(now - 60_000, "job 1 done"))
            .log_events(ev(now - 30_000, "job 2 done"))
            .send()
            .await
            .unwrap();
    });
    let out = deploy(
        &["logs", "worker", "--stack", EXAMPLE, "--since", "10m"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with("abc job 1 done") && lines[1].ends_with("abc job 2 done"),
        "{text}"
    );
    // One task's stream, a filter pattern, and a window with nothing in it (said).
    let out = deploy(
        &[
            "logs",
            "worker",
            "--stack",
            EXAMPLE,
            "--task",
            "abc",
            "--filter",
            "\"job 2\"",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.ends_with("abc job 2 done\n"), "{text}");
    let out = deploy(
        &["logs", "worker", "--stack", EXAMPLE, "--task", "other"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("logs: nothing from worker in the last 10m of task other"),
        "{}",
        stderr(&out)
    );
    let out = deploy(&["logs", "jobsQueue", "--stack", EXAMPLE], &env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a usage error: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(
            "'jobsQueue' is a sqs-queue: this verb takes a worker-service or scheduled-job"
        ),
        "{}",
        stderr(&out)
    );
    let out = deploy(
        &[
            "logs",
            "worker",
            "--stack",
            EXAMPLE,
            "--since",
            "10 minutes",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn what_apply_sends_is_valid_for_the_real_api() {
    let w = World::new();
    let dir = TempDir::new("models");
    let text = w.example();
    let first = write(&dir, "a.yaml", &text);
    let changed = write(
        &dir,
        "b.yaml",
        &text
            .replace("memory: 512", "memory: 1024")
            .replace("retentionDays: 14", "retentionDays: 60")
            .replace(
                "keepAvgCpuUtilizationUnder: 80",
                "keepAvgCpuUtilizationUnder: 70",
            )
            .replace("tags: { team: payments }", "tags: { team: billing }"),
    );
    let without_job = write(&dir, "c.yaml", &text[..text.find("  nightly:").unwrap()]);
    w.proxy.record();
    let runs: [&[&str]; 4] = [
        &["apply", "--no-wait", "--stack", &first],
        &["apply", "--no-wait", "--stack", &changed],
        &["apply", "--no-wait", "--stack", &without_job],
        &["delete", "--yes", "--stack", &without_job],
    ];
    for args in runs {
        let out = w.deploy(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let recorded = w.proxy.recorded();
    let mutating: std::collections::BTreeSet<&str> = recorded
        .iter()
        .map(|r| r.action.as_str())
        .filter(|a| proxy::is_mutating(a))
        .collect();
    // Every kind of change went through the checker.
    for a in [
        "CreateRole",
        "PutRolePolicy",
        "TagRole",
        "CreateQueue",
        "TagQueue",
        "RegisterTaskDefinition",
        "UpdateService",
        "PutScalingPolicy",
        "CreateSchedule",
        "DeleteSchedule",
        "DeleteService",
        "DeleteQueue",
        "DeleteRole",
        "PutDashboard",
        "PutRetentionPolicy",
        "RegisterScalableTarget",
        "CreateScheduleGroup",
        "DeleteLogGroup",
        "PutParameter",
        "DeleteParameter",
    ] {
        assert!(mutating.contains(a), "{a} not exercised: {mutating:?}");
    }
    check_with_models(&dir, &recorded);
}

/// A queue worker that scales to zero: the wake and idle alarms on its queue's own
/// metrics, each triggering its step policy; the scalable target 0..max; re-apply
/// sends nothing; delete takes the alarms too and leaves someone else's alone.
#[test]
fn a_service_that_scales_to_zero_gets_its_alarms() {
    let w = World::new();
    let dir = TempDir::new("zero");
    let text = format!(
        "stack: orders\ncluster: zc\nnetwork: {{ subnets: [{}] }}\nresources:\n  jobs:\n    type: sqs-queue\n    properties: {{ deadLetterQueue: {{ targetQueue: dead, maxReceiveCount: 3 }} }}\n  dead:\n    type: sqs-queue\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      connectTo: [jobs]\n      scaling:\n        minInstances: 0\n        maxInstances: 4\n        idleMinutes: 20\n        scalingPolicy: {{ keepBacklogPerInstanceUnder: 10 }}\n",
        w.subnets[0]
    );
    let file = write(&dir, "bosun.yaml", &text);
    // Someone else's alarm under the stack's prefix: never read as the stack's.
    py(&w.moto, "import boto3,sys; boto3.client('cloudwatch', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').put_metric_alarm(AlarmName='orders-theirs', MetricName='m', Namespace='n', Statistic='Maximum', Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator='GreaterThanThreshold')");

    let out = w.deploy(&["diff", "--stack", &file]);
    let plan = stdout(&out);
    assert!(plan.contains("+ create alarm orders-worker-wake"), "{plan}");
    assert!(plan.contains("+ create alarm orders-worker-idle"), "{plan}");
    assert!(
        plan.contains("+ create scaling policy orders-worker-wake"),
        "{plan}"
    );

    // An alarm with the wake alarm's name that is not the stack's: apply stops before
    // any change, naming it.
    py(&w.moto, "import boto3,sys; boto3.client('cloudwatch', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').put_metric_alarm(AlarmName='orders-worker-wake', MetricName='m', Namespace='n', Statistic='Maximum', Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator='GreaterThanThreshold', Tags=[{'Key': 'bosun:stack', 'Value': 'billing'}])");
    w.refuses(
        &["apply", "--no-wait", "--stack", &file],
        "alarm orders-worker-wake exists but is not this stack's (tag bosun:stack=billing)",
    );
    py(&w.moto, "import boto3,sys; boto3.client('cloudwatch', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').delete_alarms(AlarmNames=['orders-worker-wake'])");

    // apply, waiting for the service (with no task to start) to settle.
    w.proxy.record();
    let out = w.deploy(&["apply", "--timeout", "120", "--stack", &file]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let requests = w.proxy.recorded();
    // Each alarm is put after the policy it triggers (it names the policy's ARN).
    let sent: Vec<(&str, &str)> = requests
        .iter()
        .filter(|r| r.action == "PutScalingPolicy" || r.action == "PutMetricAlarm")
        .map(|r| (r.action.as_str(), r.body.as_str()))
        // The queue's dead letters roll deployments back: that alarm triggers no
        // policy (tests/operate.rs checks it).
        .filter(|(_, b)| !b.contains("AlarmName=orders-worker-dead-letters&"))
        .collect();
    assert_eq!(sent.len(), 5, "{sent:?}");
    for suffix in ["wake", "idle"] {
        let at = |action: &str, needle: &str| {
            sent.iter()
                .position(|(a, b)| *a == action && b.contains(needle))
                .unwrap_or_else(|| panic!("{action} {needle} not sent: {sent:?}"))
        };
        assert!(
            at("PutScalingPolicy", &format!("\"orders-worker-{suffix}\""))
                < at(
                    "PutMetricAlarm",
                    &format!("AlarmName=orders-worker-{suffix}&")
                )
        );
    }

    // What AWS has, read back from moto.
    let seen = py(
        &w.moto,
        r#"
import boto3, sys, json
c = lambda s: boto3.client(s, endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')
aas = c('application-autoscaling')
t = aas.describe_scalable_targets(ServiceNamespace='ecs')['ScalableTargets'][0]
print('target', t['ResourceId'], t['MinCapacity'], t['MaxCapacity'])
pols = {p['PolicyName']: p for p in aas.describe_scaling_policies(ServiceNamespace='ecs')['ScalingPolicies']}
for n in sorted(pols):
    p = pols[n]
    steps = p.get('StepScalingPolicyConfiguration', {}).get('StepAdjustments', [])
    print('policy', n, p['PolicyType'], json.dumps([(s.get('MetricIntervalLowerBound'), s.get('MetricIntervalUpperBound'), s['ScalingAdjustment']) for s in steps]))
cw = c('cloudwatch')
for a in cw.describe_alarms(AlarmNamePrefix='orders-worker')['MetricAlarms']:
    expr = [m for m in a['Metrics'] if m.get('Expression')][0]
    dims = sorted({d['Value'] for m in a['Metrics'] if 'MetricStat' in m for d in m['MetricStat']['Metric']['Dimensions']})
    target = [n for n, p in pols.items() if p['PolicyARN'] in a['AlarmActions']]
    tags = {t['Key']: t['Value'] for t in cw.list_tags_for_resource(ResourceARN=a['AlarmArn'])['Tags']}
    print('alarm', a['AlarmName'], a['ComparisonOperator'], a['Threshold'], a['EvaluationPeriods'], a['TreatMissingData'], expr['Expression'], dims, target, tags.get('bosun:stack'))
"#,
    );
    let want = [
        "target service/zc/orders-worker 0 4",
        "policy orders-worker-backlog TargetTrackingScaling []",
        "policy orders-worker-idle StepScaling [[null, 0.0, 0]]",
        "policy orders-worker-wake StepScaling [[0.0, 10.0, 1], [10.0, 20.0, 2], [20.0, 30.0, 3], [30.0, null, 4]]",
        "alarm orders-worker-wake GreaterThanOrEqualToThreshold 1.0 1 notBreaching IF((f0) == 0, v0, 0) ['orders-jobs'] ['orders-worker-wake'] orders",
        "alarm orders-worker-idle LessThanThreshold 1.0 20 notBreaching v0 + f0 ['orders-jobs'] ['orders-worker-idle'] orders",
    ];
    for line in want {
        assert!(seen.lines().any(|l| l == line), "{line:?} not in\n{seen}");
    }

    // Again: nothing to change, nothing sent.
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("no changes"), "{}", stdout(&out));
    assert!(w.proxy.mutating().is_empty(), "{:?}", w.proxy.mutating());

    // A longer idle time is one alarm's change.
    let longer = write(
        &dir,
        "longer.yaml",
        &text.replace("idleMinutes: 20", "idleMinutes: 30"),
    );
    let out = w.deploy(&["diff", "--stack", &longer]);
    let plan = stdout(&out);
    assert!(plan.contains("~ update alarm orders-worker-idle"), "{plan}");
    assert!(plan.contains("EvaluationPeriods: 20 → 30"), "{plan}");
    assert!(plan.contains("1 to update"), "{plan}");

    // status: idle at zero (no task, the queue empty).
    let out = w.deploy(&["status", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("scales to zero: idle at zero; queue visible 0 in flight 0, tasks 0"),
        "{}",
        stdout(&out)
    );

    // Back to minInstances 1: the alarms and step policies go.
    let one = write(
        &dir,
        "one.yaml",
        &text
            .replace("minInstances: 0", "minInstances: 1")
            .replace("        idleMinutes: 20\n", ""),
    );
    let out = w.deploy(&["apply", "--no-wait", "--stack", &one]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = stdout(&out);
    for gone in [
        "alarm orders-worker-wake",
        "alarm orders-worker-idle",
        "scaling policy orders-worker-wake",
        "scaling policy orders-worker-idle",
    ] {
        assert!(out.contains(&format!("- delete {gone}")), "{gone}: {out}");
    }
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = w.deploy(&["delete", "--yes", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The alarms Application Auto Scaling makes for a target-tracking policy
    // (`TargetTracking-…`) are AWS's, deleted with the policy; moto keeps those of a
    // policy's earlier configuration (DisableScaleIn went false, then true) when the
    // policy is put again, so they are left out here: every alarm bosun-deploy made is
    // gone, and someone else's stays.
    let left = py(&w.moto, "import boto3,sys; print(sorted(a['AlarmName'] for a in boto3.client('cloudwatch', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').describe_alarms()['MetricAlarms'] if not a['AlarmName'].startswith('TargetTracking-')))");
    assert_eq!(left.trim(), "['orders-theirs']");

    // Every request of the alarms' kind, checked against botocore's models.
    check_with_models(&dir, &requests);
}

/// The scale-to-zero simulator replays its traces against what render gives: no task
/// of bosun's is stopped while it holds a message and no message is left behind (it
/// exits 1 otherwise), with Copilot's policy beside it.
#[test]
fn the_scale_to_zero_simulation_loses_no_message() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/scale_to_zero.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args(["--deploy", env!("CARGO_BIN_EXE_bosun-deploy")]);
    let out = run_bounded(&mut cmd, std::time::Duration::from_secs(120));
    let report = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{report}");
    for trace in ["burst:", "trickle:", "long job:", "steady:"] {
        assert!(report.contains(trace), "{trace} missing:\n{report}");
    }
    assert_eq!(report.matches("  bosun ").count(), 4, "{report}");
    assert_eq!(report.matches("  copilot ").count(), 4, "{report}");
}

/// Spot services: the stack's cluster gets the Fargate capacity providers (and gets
/// them back if someone takes them away); a shared cluster without FARGATE_SPOT
/// stops apply before any change, since bosun-deploy does not change it; an
/// on-demand base is a second strategy item, and changing it updates the service.
#[test]
fn spot_services_get_their_capacity_providers() {
    let w = World::new();
    let dir = TempDir::new("spot");
    let stack = |cluster: &str, base: u32| {
        format!(
            "stack: orders\ncluster: {cluster}\nnetwork: {{ subnets: [{}] }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      spot: true\n      onDemandBase: {base}\n",
            w.subnets[0]
        )
    };
    let ecs = |code: &str| {
        py(&w.moto, &format!("import boto3,sys,json; ecs = boto3.client('ecs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); {code}"))
    };
    // A shared cluster (not the stack's) with no capacity provider.
    ecs("ecs.create_cluster(clusterName='shared')");
    let shared = write(&dir, "shared.yaml", &stack("shared", 2));
    w.refuses(
        &["apply", "--no-wait", "--stack", &shared],
        "capacity providers FARGATE, FARGATE_SPOT on cluster shared (the spot services' strategy names them; the cluster is not this stack's",
    );
    // Its owner associates them: apply goes on, and leaves the cluster as it is.
    ecs("ecs.put_cluster_capacity_providers(cluster='shared', capacityProviders=['FARGATE', 'FARGATE_SPOT'], defaultCapacityProviderStrategy=[])");
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &shared]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let create = w.proxy.sent("CreateService");
    let create: serde_json::Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(
        create["capacityProviderStrategy"],
        serde_json::json!([
            { "capacityProvider": "FARGATE", "weight": 0, "base": 2 },
            { "capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0 }
        ])
    );
    assert!(!w
        .proxy
        .actions()
        .iter()
        .any(|a| a.contains("ClusterCapacityProviders")));
    let out = w.deploy(&["delete", "--yes", "--stack", &shared]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The stack's own cluster is made with them.
    let own = write(&dir, "own.yaml", &stack("mine", 2));
    let out = w.deploy(&["apply", "--no-wait", "--stack", &own]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let providers = ecs("print(sorted(ecs.describe_clusters(clusters=['mine'])['clusters'][0]['capacityProviders']))");
    assert_eq!(providers.trim(), "['FARGATE', 'FARGATE_SPOT']");
    w.reapply_changes_nothing(&own);
    // Taken away (or a cluster made before bosun-deploy set them): put back.
    ecs("ecs.put_cluster_capacity_providers(cluster='mine', capacityProviders=[], defaultCapacityProviderStrategy=[])");
    let out = w.deploy(&["apply", "--no-wait", "--stack", &own]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("~ update ECS cluster mine"),
        "{}",
        stdout(&out)
    );
    let providers = ecs("print(sorted(ecs.describe_clusters(clusters=['mine'])['clusters'][0]['capacityProviders']))");
    assert_eq!(providers.trim(), "['FARGATE', 'FARGATE_SPOT']");

    // A larger on-demand base updates the service's strategy.
    let more = write(&dir, "more.yaml", &stack("mine", 3));
    let out = w.deploy(&["diff", "--stack", &more]);
    let plan = stdout(&out);
    assert!(
        plan.contains("~ update ECS service orders-worker"),
        "{plan}"
    );
    assert!(
        plan.contains("capacityProviderStrategy[0].base: 2 → 3"),
        "{plan}"
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &more]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let update = w.proxy.sent("UpdateService");
    assert!(update.body.contains("\"base\":3"), "{}", update.body);
    let out = w.deploy(&["diff", "--stack", &more]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // Spot taken off: back to the launch type (an empty strategy) with a new
    // deployment, and the next diff is empty (it converges).
    let off = write(
        &dir,
        "off.yaml",
        &stack("mine", 3).replace("      spot: true\n      onDemandBase: 3\n", ""),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &off]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let update: serde_json::Value =
        serde_json::from_str(&w.proxy.sent("UpdateService").body).unwrap();
    assert_eq!(
        update["capacityProviderStrategy"],
        serde_json::json!([]),
        "{update}"
    );
    assert_eq!(update["forceNewDeployment"], true, "{update}");
    let out = w.deploy(&["diff", "--stack", &off]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// A worker on EC2 instances: its role, instance profile, launch template (the
/// ECS-optimized AMI by its public parameter, user data joining the cluster), Auto
/// Scaling group (weekly replacement, scale-in protection, a warm pool), capacity
/// provider (managed scaling and termination protection) on the stack's cluster, a task
/// that fills one instance; re-apply sends nothing; a new type is a new template
/// version; several types make a mixed instances policy; a shared cluster is refused;
/// delete takes it all.
#[test]
fn an_ec2_service_gets_its_instances_and_gives_them_back() {
    let w = World::new();
    let dir = TempDir::new("ec2");
    let stack = |cluster: &str, resources: &str| {
        format!(
            "stack: orders\ncluster: {cluster}\nnetwork: {{ subnets: [{}], assignPublicIp: true }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      resources: {resources}\n      scaling: {{ minInstances: 1, maxInstances: 4 }}\n",
            w.subnets[0]
        )
    };
    let aws = |code: &str| {
        py(&w.moto, &format!("import boto3,sys,json\ndef c(n): return boto3.client(n, endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y')\n{code}"))
    };
    // A cluster that is not the stack's cannot take its capacity provider.
    aws("c('ecs').create_cluster(clusterName='shared')");
    let shared = write(
        &dir,
        "shared.yaml",
        &stack("shared", "{ instanceTypes: [t3.medium] }"),
    );
    w.refuses(
        &["apply", "--no-wait", "--stack", &shared],
        "a cluster of the stack's own (worker run on EC2 instances through capacity providers the stack creates",
    );

    let one = write(
        &dir,
        "one.yaml",
        &stack(
            "orders",
            "{ instanceTypes: [t3.medium], enableWarmPool: true }",
        ),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &one]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let recorded = w.proxy.recorded();
    check_with_models(&dir, &recorded);
    let lt = w.proxy.sent("CreateLaunchTemplate").form();
    assert_eq!(
        lt["LaunchTemplateData.ImageId"],
        "resolve:ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    );
    assert_eq!(lt["LaunchTemplateData.InstanceType"], "t3.medium");
    assert_eq!(
        lt["LaunchTemplateData.MetadataOptions.HttpTokens"],
        "required"
    );
    assert_eq!(
        lt["LaunchTemplateData.IamInstanceProfile.Arn"],
        "arn:aws:iam::123456789012:instance-profile/bosun/orders/orders-worker-instance"
    );
    assert_eq!(
        lt["LaunchTemplateData.NetworkInterface.1.AssociatePublicIpAddress"],
        "true"
    );
    let script = aws(&format!(
        "import base64; print(base64.b64decode('{}').decode())",
        lt["LaunchTemplateData.UserData"]
    ));
    for line in [
        "ECS_CLUSTER=orders",
        "ECS_RESERVED_MEMORY=256",
        "ECS_AWSVPC_BLOCK_IMDS=true",
        "ECS_WARM_POOLS_CHECK=true",
    ] {
        assert!(script.lines().any(|l| l == line), "{line} in {script}");
    }
    // What moto does not keep, as sent.
    // The weekly refresh: protected instances are never replaced by maximum instance
    // lifetime, so a schedule calls StartInstanceRefresh on the group, replacing the
    // protected ones too (the call's input is checked against its model above).
    let refresh: serde_json::Value =
        serde_json::from_str(&w.proxy.sent("CreateSchedule").body).unwrap();
    assert_eq!(refresh["ScheduleExpression"], "rate(7 days)");
    assert_eq!(
        refresh["Target"]["Arn"],
        "arn:aws:scheduler:::aws-sdk:autoscaling:startInstanceRefresh"
    );
    let input: serde_json::Value =
        serde_json::from_str(refresh["Target"]["Input"].as_str().unwrap()).unwrap();
    assert_eq!(input["AutoScalingGroupName"], "orders-worker");
    assert_eq!(input["Preferences"]["ScaleInProtectedInstances"], "Refresh");
    assert_eq!(input["Preferences"]["MinHealthyPercentage"], 100);
    assert!(
        refresh["Target"]["RoleArn"]
            .as_str()
            .unwrap()
            .ends_with(":role/bosun/orders/orders-refresh"),
        "{refresh}"
    );
    let group = w.proxy.sent("CreateAutoScalingGroup").form();
    assert_eq!(group["MaxInstanceLifetime"], "604800");
    assert_eq!(group["NewInstancesProtectedFromScaleIn"], "true");
    assert_eq!(group["MinSize"], "0");
    // Twice maxInstances: room for a deployment that starts new tasks first.
    assert_eq!(group["MaxSize"], "8");
    assert_eq!(group["LaunchTemplate.Version"], "$Latest");
    let pool = w.proxy.sent("PutWarmPool").form();
    assert_eq!(pool["PoolState"], "Stopped");
    assert!(w
        .proxy
        .sent("GetParameters")
        .body
        .contains("amazon-linux-2023/recommended/image_id"));
    // What AWS holds.
    let seen = aws(
        "asg = c('autoscaling').describe_auto_scaling_groups(AutoScalingGroupNames=['orders-worker'])['AutoScalingGroups'][0]\n\
         cp = c('ecs').describe_capacity_providers(capacityProviders=['orders-worker'])['capacityProviders'][0]\n\
         g = cp['autoScalingGroupProvider']\n\
         print(g['autoScalingGroupArn'] == asg['AutoScalingGroupARN'], g['managedScaling']['status'], g['managedTerminationProtection'])\n\
         print(sorted(c('ecs').describe_clusters(clusters=['orders'])['clusters'][0]['capacityProviders']))\n\
         td = c('ecs').describe_task_definition(taskDefinition='orders-worker')['taskDefinition']\n\
         print(td['cpu'], td['memory'], td['requiresCompatibilities'])\n\
         p = c('iam').get_instance_profile(InstanceProfileName='orders-worker-instance')['InstanceProfile']\n\
         print([r['RoleName'] for r in p['Roles']])",
    );
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(seen[0], "True ENABLED ENABLED");
    assert_eq!(seen[1], "['FARGATE', 'FARGATE_SPOT', 'orders-worker']");
    // One task fills a t3.medium: 2 vCPU, 4096 MiB less the kernel's and the agent's.
    assert_eq!(seen[2], "2048 3584 ['EC2']");
    assert_eq!(seen[3], "['orders-worker-instance']");
    let create: serde_json::Value =
        serde_json::from_str(&w.proxy.sent("CreateService").body).unwrap();
    assert_eq!(
        create["capacityProviderStrategy"],
        serde_json::json!([{ "capacityProvider": "orders-worker", "weight": 1, "base": 0 }])
    );
    assert_eq!(create.get("launchType"), None);

    w.reapply_changes_nothing(&one);
    // status shows the instances (none yet: ECS asks for them once tasks wait).
    let out = w.deploy(&["status", "--stack", &one]);
    assert!(
        stdout(&out).contains("  EC2 capacity orders-worker (t3.medium): desired 0, instances 0 (0 in service), warm pool 0\n"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // A larger type: a new template version (the group launches $Latest), and a task
    // that fills the new type.
    let large = write(
        &dir,
        "large.yaml",
        &stack(
            "orders",
            "{ instanceTypes: [t3.large], enableWarmPool: true }",
        ),
    );
    let out = w.deploy(&["diff", "--stack", &large]);
    let plan = stdout(&out);
    assert!(
        plan.contains("~ update EC2 launch template orders-worker"),
        "{plan}"
    );
    assert!(
        plan.contains("LaunchTemplateData.InstanceType: t3.medium → t3.large"),
        "{plan}"
    );
    assert!(!plan.contains("Auto Scaling group"), "{plan}");
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &large]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let version = w.proxy.sent("CreateLaunchTemplateVersion").form();
    assert_eq!(version["LaunchTemplateData.InstanceType"], "t3.large");
    let modify = w.proxy.sent("ModifyLaunchTemplate").form();
    assert_eq!(modify["SetDefaultVersion"], "2");
    check_with_models(&dir, &w.proxy.recorded());
    w.reapply_changes_nothing(&large);

    // Two types and given sizes: a mixed instances policy (the first preferred), no
    // warm pool, tasks packed.
    let mixed = write(
        &dir,
        "mixed.yaml",
        &stack(
            "orders",
            "{ instanceTypes: [t3.large, m5.large], cpu: 0.5, memory: 1024 }",
        ),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &mixed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let update = w.proxy.sent("UpdateAutoScalingGroup").form();
    assert_eq!(
        update["MixedInstancesPolicy.LaunchTemplate.Overrides.member.1.InstanceType"],
        "t3.large"
    );
    assert_eq!(
        update["MixedInstancesPolicy.LaunchTemplate.Overrides.member.2.InstanceType"],
        "m5.large"
    );
    assert_eq!(
        update["MixedInstancesPolicy.InstancesDistribution.OnDemandAllocationStrategy"],
        "prioritized"
    );
    w.proxy.sent("DeleteWarmPool");
    let service = w.proxy.sent("UpdateService");
    assert!(
        service
            .body
            .contains(r#""placementStrategy":[{"type":"binpack","field":"memory"}]"#),
        "{}",
        service.body
    );
    check_with_models(&dir, &w.proxy.recorded());
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &mixed]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new(), "{}", stdout(&out));

    // Delete: the provider comes off the cluster first (ECS refuses while the deleted
    // service's tasks still stop: twice here), then everything goes.
    w.proxy
        .fail("PutClusterCapacityProviders", 2, "ResourceInUseException");
    w.proxy.record();
    let out = w.deploy(&["delete", "--yes", "--stack", &mixed]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let puts = w.proxy.actions();
    let puts = puts.iter().filter(|a| *a == "PutClusterCapacityProviders");
    assert_eq!(puts.count(), 3);
    let left = aws(
        "print(len(c('autoscaling').describe_auto_scaling_groups(AutoScalingGroupNames=['orders-worker'])['AutoScalingGroups']))\n\
         print(len(c('ecs').describe_capacity_providers(capacityProviders=['orders-worker'])['capacityProviders']))\n\
         print(len(c('ec2').describe_launch_templates(Filters=[{'Name': 'tag:bosun:stack', 'Values': ['orders']}])['LaunchTemplates']))\n\
         print(len(c('iam').list_instance_profiles(PathPrefix='/bosun/orders/')['InstanceProfiles']))\n\
         print(len(c('iam').list_roles(PathPrefix='/bosun/orders/')['Roles']))\n\
         print([x['status'] for x in c('ecs').describe_clusters(clusters=['orders'])['clusters']])",
    );
    assert_eq!(
        left.lines().collect::<Vec<_>>(),
        ["0", "0", "0", "0", "0", "['INACTIVE']"],
        "{left}"
    );

    // A scheduled job on EC2: its schedule runs the task through its capacity provider.
    let job = write(
        &dir,
        "job.yaml",
        &format!(
            "stack: nightly\nnetwork: {{ subnets: [{}] }}\nresources:\n  report:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: repo/app:1, includesBosun: true }} }}\n      command: [run]\n      schedule: \"cron(0 3 * * ? *)\"\n      taskCount: 2\n      resources: {{ instanceTypes: [m6g.large], architecture: arm64 }}\n",
            w.subnets[0]
        ),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &job]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_with_models(&dir, &w.proxy.recorded());
    // The job's schedule (beside its capacity's weekly refresh).
    let schedule: serde_json::Value = w
        .proxy
        .recorded()
        .into_iter()
        .find(|r| {
            r.action == "CreateSchedule"
                && r.path
                    .split('?')
                    .next()
                    .unwrap()
                    .ends_with("/schedules/nightly-report")
        })
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.body).unwrap())
        .expect("the job's CreateSchedule");
    let ecs = &schedule["Target"]["EcsParameters"];
    assert_eq!(
        ecs["CapacityProviderStrategy"],
        serde_json::json!([{ "capacityProvider": "nightly-report", "weight": 1 }])
    );
    assert_eq!(ecs.get("LaunchType"), None);
    let lt = w.proxy.sent("CreateLaunchTemplate").form();
    assert_eq!(
        lt["LaunchTemplateData.ImageId"],
        "resolve:ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id"
    );
    // Twice the job's taskCount: room for runs that overlap a deployment.
    assert_eq!(
        w.proxy.sent("CreateAutoScalingGroup").form()["MaxSize"],
        "4"
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &job]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.proxy.mutating(), Vec::<String>::new(), "{}", stdout(&out));
    let out = w.deploy(&["delete", "--yes", "--stack", &job]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A private registry's image: the task definition pulls it with the Secrets Manager
/// secret named by `repositoryCredentialsSecretArn`, the execution role may read that
/// secret alone, and a secret that does not exist stops apply before any change.
#[test]
fn a_private_registry_image_is_pulled_with_its_secret() {
    let w = World::new();
    let dir = TempDir::new("private");
    let arn = py(
        &w.moto,
        "import boto3,sys; print(boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_secret(Name='ghcr', SecretString='{\"username\": \"u\", \"password\": \"p\"}')['ARN'])",
    );
    let arn = arn.trim();
    let stack = |secret: &str| {
        format!(
            "stack: orders\nnetwork: {{ subnets: [{}] }}\nresources:\n  worker:\n    type: worker-service\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: ghcr.io/acme/app:1, includesBosun: true, repositoryCredentialsSecretArn: \"{secret}\" }} }}\n      command: [run]\n",
            w.subnets[0]
        )
    };
    let missing = write(&dir, "missing.yaml", &stack(&arn.replace("ghcr", "gone")));
    w.refuses(
        &["apply", "--no-wait", "--stack", &missing],
        "secret arn:aws:secretsmanager:us-east-1:123456789012:secret:gone",
    );
    let file = write(&dir, "bosun.yaml", &stack(arn));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_with_models(&dir, &w.proxy.recorded());
    let td: serde_json::Value =
        serde_json::from_str(&w.proxy.sent("RegisterTaskDefinition").body).unwrap();
    assert_eq!(
        td["containerDefinitions"][0]["repositoryCredentials"],
        serde_json::json!({ "credentialsParameter": arn })
    );
    let policies: Vec<String> = w
        .proxy
        .recorded()
        .into_iter()
        .filter(|r| r.action == "PutRolePolicy" && r.body.contains("orders-execution"))
        .map(|r| r.form()["PolicyDocument"].clone())
        .collect();
    assert!(
        policies
            .iter()
            .any(|p| p.contains("secretsmanager:GetSecretValue")
                && p.contains(&format!("\"{arn}\""))
                && !p.contains(&format!("{arn}*"))),
        "{policies:?}"
    );
    w.reapply_changes_nothing(&file);
}

/// ECS takes a stop timeout above 120 s on EC2 capacity, not on Fargate; bosun's own
/// grace goes that far too.
#[test]
fn a_longer_stop_timeout_is_allowed_on_ec2_capacity_only() {
    let dir = TempDir::new("stoptimeout");
    let job = |extra: &str| {
        format!("{HEAD}  j:\n    type: scheduled-job\n    properties:\n      packaging: {{ type: prebuilt-image, properties: {{ image: x, includesBosun: true }} }}\n      command: [run]\n      schedule: rate(1 hour)\n      stopTimeout: 600\n{extra}")
    };
    let ec2 = write(
        &dir,
        "ec2.yaml",
        &job("      resources: { instanceTypes: [t3.small] }\n"),
    );
    let out = deploy(&["validate", "--stack", &ec2], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fargate = write(&dir, "fargate.yaml", &job(""));
    let out = deploy(&["validate", "--stack", &fargate], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("stopTimeout: 600 is out of range: allowed 2..=120"),
        "{}",
        stderr(&out)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["--stop-timeout", "600", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
