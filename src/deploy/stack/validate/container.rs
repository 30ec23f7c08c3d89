//! The rules of a container (a worker service's or a scheduled job's): packaging,
//! environment, connections, health check, resources and their EC2 capacity.

use super::rules::{kind_of, params_of, Kinds};
use super::*;

/// A registry as the stack names it: `HOST[:PORT]/NAMESPACE`, with no scheme.
pub fn check_registry(r: &str) -> std::result::Result<(), String> {
    let bad = |why: &str| {
        Err(format!("'{r}': {why}: expected HOST[:PORT]/NAMESPACE (for example ghcr.io/acme or 127.0.0.1:5000/team)"))
    };
    if r.contains("://") {
        return bad("no scheme");
    }
    let Some((host, ns)) = r.split_once('/') else {
        return bad("no namespace");
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':'));
    let ns_ok = !ns.is_empty()
        && !ns.ends_with('/')
        && ns.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-' | '/')
        });
    if !host_ok {
        return bad("not a host name");
    }
    if !ns_ok {
        return bad("a namespace is lowercase letters, digits, '.', '_', '-' and '/'");
    }
    Ok(())
}

/// A task on EC2 instances (`resources.instanceTypes`): the types, their architecture,
/// the warm pool, and the task's size against the smallest type.
pub(super) fn ec2_resources(types: &[String], res: &Resources, rp: &str, c: &mut Collector<'_>) {
    use crate::deploy::stack::instance_types as it;
    let tp = format!("{rp}/instanceTypes");
    if types.is_empty() {
        c.error(
            tp.clone(),
            "give at least one instance type (the first is preferred)",
        );
        return;
    }
    let arch = res.architecture.as_deref().unwrap_or("x86_64");
    for (i, t) in types.iter().enumerate() {
        if !it::well_formed(t) {
            c.error(
                format!("{tp}/{i}"),
                format!("{t:?} is not an EC2 instance type (family.size, as m6i.large)"),
            );
        } else if types[..i].contains(t) {
            c.error(format!("{tp}/{i}"), format!("{t} is listed twice"));
        } else if it::architecture(t) != arch {
            c.error(
                format!("{tp}/{i}"),
                format!(
                    "{t} is an {} type and the task's architecture is {arch} (resources.architecture): every type must run the image",
                    it::architecture(t)
                ),
            );
        }
    }
    if res.enable_warm_pool == Some(true) && types.len() != 1 {
        c.error(
            format!("{rp}/enableWarmPool"),
            format!(
                "a warm pool needs exactly one instance type (EC2 Auto Scaling has no warm pool for a group of mixed types); {} are listed",
                types.len()
            ),
        );
    }
    // The smallest listed type, by what a task can have of it; every type must be known
    // for a task to be sized to fill one without cpu and memory.
    let known: Vec<(usize, &String, it::Shape)> = types
        .iter()
        .enumerate()
        .filter_map(|(i, t)| it::shape(t).map(|s| (i, t, s)))
        .collect();
    let smallest = known.iter().min_by_key(|(_, _, s)| s.task_memory());
    match (res.cpu, res.memory) {
        (None, None) => {
            for (i, t) in types.iter().enumerate() {
                if it::well_formed(t) && it::shape(t).is_none() {
                    c.error(
                        format!("{tp}/{i}"),
                        format!("bosun-deploy does not know the size of {t}, so it cannot size a task to fill one: give resources.cpu and resources.memory"),
                    );
                }
            }
        }
        (Some(_), None) => c.error(
            format!("{rp}/cpu"),
            "cpu without memory: give resources.memory too (or neither: a task then fills one instance of the smallest type)",
        ),
        (None, Some(_)) => c.error(
            format!("{rp}/memory"),
            "memory without cpu: give resources.cpu too (or neither: a task then fills one instance of the smallest type)",
        ),
        (Some(cpu), Some(mem)) => {
            if cpu <= 0.0 {
                c.error(format!("{rp}/cpu"), format!("{cpu} vCPU must be above 0"));
            }
            if mem < 128 {
                c.error(
                    format!("{rp}/memory"),
                    format!("{mem} MiB is below ECS's least, 128 MiB"),
                );
            }
            if let Some((_, t, shape)) = smallest {
                if (cpu * 1024.0).round() as i64 > shape.cpu_units() {
                    c.error(
                        format!("{rp}/cpu"),
                        format!(
                            "{cpu} vCPU does not fit a {t} ({} vCPU){}",
                            shape.vcpus,
                            super::super::copilot::cpu_hint(cpu)
                        ),
                    );
                }
                if mem > shape.task_memory() {
                    c.error(
                        format!("{rp}/memory"),
                        format!(
                            "{mem} MiB does not fit a {t}: a task can have up to {} MiB of it",
                            shape.task_memory()
                        ),
                    );
                }
            }
        }
    }
}

pub(super) fn container(
    stack: &Stack,
    kinds: &Kinds,
    name: &str,
    ctr: &Container,
    props: &str,
    c: &mut Collector<'_>,
) {
    let pk = format!("{props}/packaging");
    if let Some(arn) = &ctr.packaging.properties.repository_credentials_secret_arn {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        let ok = parts.len() == 7
            && parts[0] == "arn"
            && parts[2] == "secretsmanager"
            && parts[5] == "secret"
            && !parts[6].is_empty();
        if !ok {
            c.error(
                format!("{pk}/properties/repositoryCredentialsSecretArn"),
                format!("{arn:?} is not a Secrets Manager secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)"),
            );
        }
    }
    if ctr.packaging.properties.includes_bosun.is_some() && ctr.is_built() {
        c.error(
            format!("{pk}/properties/includesBosun"),
            "includesBosun is for a prebuilt-image: bosun-deploy puts bosun into every image it builds",
        );
    }
    match ctr.packaging.kind.as_str() {
        "prebuilt-image"
            if ctr
                .packaging
                .properties
                .image
                .as_deref()
                .is_none_or(str::is_empty) =>
        {
            c.error(
                format!("{pk}/properties"),
                "prebuilt-image needs properties.image",
            )
        }
        "image-buildpack" | "stacktape-image-buildpack" => {
            match ctr.packaging.properties.entryfile_path.as_deref() {
                None | Some("") => c.error(
                    format!("{pk}/properties"),
                    "image-buildpack needs properties.entryfilePath (the file the worker starts from)",
                ),
                Some(entry) => {
                    let ext = Path::new(entry)
                        .extension()
                        .and_then(|e| e.to_str())
                        .unwrap_or("");
                    if !ENTRY_EXTENSIONS.iter().any(|(e, _)| *e == ext) {
                        c.error(
                            format!("{pk}/properties/entryfilePath"),
                            format!(
                                "{entry}: auto-packaging knows Node.js (.js, .mjs, .cjs, .ts, .mts), Python (.py) and Go (.go) entry files; for another language, write a Dockerfile (custom-dockerfile)"
                            ),
                        );
                    }
                }
            }
        }
        "external-buildpack"
            if ctr
                .packaging
                .properties
                .builder
                .as_deref()
                .is_none_or(str::is_empty) =>
        {
            c.error(
                format!("{pk}/properties"),
                "external-buildpack needs properties.builder (a Cloud Native Buildpacks builder image, as paketobuildpacks/builder-jammy-base)",
            )
        }
        "custom-dockerfile" if ctr.packaging.properties.build_context_path.is_none() => c.error(
            format!("{pk}/properties"),
            "custom-dockerfile needs properties.buildContextPath",
        ),
        _ => {}
    }
    let res = &ctr.resources;
    let rp = format!("{props}/resources");
    let lower = stack.stack.to_ascii_lowercase();
    if res.instance_types.is_some()
        && ["aws", "ecs", "fargate"]
            .iter()
            .any(|p| lower.starts_with(p))
    {
        c.error(
            format!("{rp}/instanceTypes"),
            format!("the EC2 capacity provider would be named {}-{name}, and ECS refuses a capacity provider name that starts with aws, ecs or fargate: rename the stack", stack.stack),
        );
    }
    if res.enable_warm_pool.is_some() && res.instance_types.is_none() {
        c.error(
            format!("{rp}/enableWarmPool"),
            "a warm pool holds EC2 instances: it needs resources.instanceTypes (with exactly one type)",
        );
    }
    match (&res.instance_types, res.cpu, res.memory) {
        (Some(types), _, _) => ec2_resources(types, res, &rp, c),
        (None, Some(cpu), Some(mem)) => match fargate_memory(cpu) {
            None => c.error(
                format!("{rp}/cpu"),
                format!(
                    "{cpu} vCPU is not a Fargate size: allowed {}{}",
                    fargate_cpus(),
                    super::super::copilot::cpu_hint(cpu)
                ),
            ),
            Some(allowed) if !allowed.contains(&mem) => {
                let (lo, hi) = (allowed[0], allowed[allowed.len() - 1]);
                let step = if allowed.len() > 1 {
                    allowed[1] - allowed[0]
                } else {
                    0
                };
                let list = if allowed.len() <= 3 {
                    allowed
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                } else {
                    format!("{lo}..={hi} in steps of {step}")
                };
                c.error(
                    format!("{rp}/memory"),
                    format!("{mem} MiB does not go with {cpu} vCPU on Fargate: allowed {list}"),
                );
            }
            Some(_) => {}
        },
        // Neither: Fargate's smallest task, the documented default.
        (None, None, None) => {}
        (None, Some(cpu), None) => {
            let allowed = fargate_memory(cpu).map_or_else(
                || {
                    format!(
                        "{cpu} vCPU is not a Fargate size either: allowed {}{}",
                        fargate_cpus(),
                        super::super::copilot::cpu_hint(cpu)
                    )
                },
                |m| {
                    format!(
                        "with {cpu} vCPU, Fargate allows {}..={} MiB",
                        m[0],
                        m[m.len() - 1]
                    )
                },
            );
            c.error(
                format!("{rp}/cpu"),
                format!("cpu without memory: give resources.memory too ({allowed}); the default 0.25 vCPU / 512 MiB is for neither given"),
            );
        }
        (None, None, Some(mem)) => {
            let cpus: Vec<String> = FARGATE_CPUS
                .iter()
                .filter(|cpu| fargate_memory(**cpu).is_some_and(|m| m.contains(&mem)))
                .map(|cpu| cpu.to_string())
                .collect();
            let allowed = if cpus.is_empty() {
                format!("no Fargate size has {mem} MiB")
            } else {
                format!("for {mem} MiB, Fargate allows {} vCPU", cpus.join(", "))
            };
            c.error(
                format!("{rp}/memory"),
                format!("memory without cpu: give resources.cpu too ({allowed}); the default 0.25 vCPU / 512 MiB is for neither given"),
            );
        }
    }
    if let Some(gib) = res.ephemeral_storage {
        if res.instance_types.is_some() {
            c.error(
                format!("{rp}/ephemeralStorage"),
                "ephemeralStorage is Fargate's task storage: on EC2 (instanceTypes) a task uses the instance's disk",
            );
        } else {
            c.range(format!("{rp}/ephemeralStorage"), Some(gib), 21, 200);
        }
    }
    let hc = format!("{props}/internalHealthCheck");
    if let Some(h) = &ctr.internal_health_check {
        c.range(format!("{hc}/intervalSeconds"), h.interval_seconds, 5, 300);
        c.range(format!("{hc}/timeoutSeconds"), h.timeout_seconds, 2, 60);
        c.range(format!("{hc}/retries"), h.retries, 1, 10);
        c.range(
            format!("{hc}/startPeriodSeconds"),
            h.start_period_seconds,
            0,
            300,
        );
    }
    let max_stop = if ctr.resources.instance_types.is_some() {
        crate::deploy::stack::limits::MAX_STOP_TIMEOUT_EC2
    } else {
        crate::deploy::stack::limits::MAX_STOP_TIMEOUT_FARGATE
    };
    c.range(
        format!("{props}/stopTimeout"),
        ctr.stop_timeout,
        2,
        max_stop,
    );
    if let Some(days) = ctr.logging.retention_days {
        if !RETENTION_DAYS.contains(&days) {
            let list = RETENTION_DAYS
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            c.error(
                format!("{props}/logging/retentionDays"),
                format!("{days} is not a CloudWatch Logs retention: allowed {list}"),
            );
        }
    }
    if let Some(f) = &ctr.logging.forwarding {
        forwarding(f, &format!("{props}/logging/forwarding"), c);
    }
    let mut names = BTreeSet::new();
    for (i, e) in ctr.environment.iter().enumerate() {
        let ep = format!("{props}/environment/{i}");
        if !names.insert(e.name.clone()) {
            c.error(format!("{ep}/name"), format!("'{}' is set twice", e.name));
        }
        let Some(text) = e.value.as_str() else {
            continue;
        };
        match directive(text) {
            Ok(None) => {}
            Ok(Some(Directive::Secret { .. } | Directive::Param { .. })) => {}
            Ok(Some(Directive::ResourceParam { resource, param })) => {
                match kind_of(kinds, &resource) {
                    None => c.error(
                        format!("{ep}/value"),
                        format!("$ResourceParam: no resource named '{resource}'"),
                    ),
                    // A type bosun-deploy does not offer is reported at the resource.
                    Some(kind) if !crate::deploy::stack::RESOURCE_TYPES.contains(&kind) => {}
                    Some(kind) => {
                        let allowed = params_of(kind);
                        if !allowed.contains(&param.as_str()) {
                            let list = if allowed.is_empty() {
                                "none".to_owned()
                            } else {
                                allowed.join(", ")
                            };
                            c.error(format!("{ep}/value"), format!("$ResourceParam: '{resource}' ({kind}) has no parameter '{param}': allowed {list}"));
                        }
                    }
                }
            }
            Err(msg) => c.error(format!("{ep}/value"), msg),
        }
    }
    for (i, t) in ctr.connect_to.iter().enumerate() {
        let cp = format!("{props}/connectTo/{i}");
        if t.starts_with("aws:") {
            if !crate::deploy::stack::AWS_SERVICES.contains(&t.as_str()) {
                c.error(
                    cp,
                    format!(
                        "'{t}' is not an AWS service connectTo knows: {}",
                        crate::deploy::stack::AWS_SERVICES.join(", ")
                    ),
                );
            }
            continue;
        }
        match kind_of(kinds, t) {
            None => c.error(cp, format!("no resource named '{t}'")),
            Some(_) if t == name => c.error(cp, "a resource cannot connect to itself"),
            Some("sqs-queue") => {
                let Some(Resource::SqsQueue(q)) = stack.resources.get(t) else {
                    continue;
                };
                let vis = q.visibility_timeout_seconds.unwrap_or(DEFAULT_VISIBILITY);
                let stop = ctr.stop_timeout();
                if vis < stop {
                    c.warn(
                        format!("/resources/{t}/properties/visibilityTimeoutSeconds"),
                        format!("visibility timeout {vis} s is shorter than {name}'s stopTimeout {stop} s: a message being finished during a stop can be delivered again meanwhile"),
                    );
                }
            }
            Some("bucket") => {}
            Some("worker-service") if !stack.ports(t).is_empty() => {}
            Some("worker-service") => c.error(
                cp,
                format!("'{t}' is a worker-service without ports: give it `ports` (its tasks then take connections from the stack's others), or connect to sqs-queues, buckets, private services and aws:ses"),
            ),
            // A type bosun-deploy does not offer is reported at the resource, once.
            Some(other) if !crate::deploy::stack::RESOURCE_TYPES.contains(&other) => {}
            Some(other) => c.error(
                cp,
                format!("'{t}' is a {other}: only sqs-queues, buckets, worker services with ports and aws:ses can be connected to"),
            ),
        }
    }
    if let (Some(h), stop) = (&ctr.internal_health_check, ctr.stop_timeout()) {
        let timeout = h.timeout();
        if stop < timeout {
            c.warn(
                format!("{props}/stopTimeout"),
                format!("stopTimeout {stop} s is shorter than the health check timeout {timeout} s: a stop can cut a running check and the worker's own shutdown short"),
            );
        }
    }
}

/// Log forwarding: an HTTPS URL (Firehose takes no other: Firehose API reference,
/// HttpEndpointConfiguration, Url pattern `https://.*`), and the API key only as a
/// whole Secrets Manager secret, which Firehose reads as `{"api_key": ...}` (Firehose
/// Developer Guide, "Authenticate with AWS Secrets Manager in Amazon Data Firehose").
fn forwarding(f: &crate::deploy::stack::Forwarding, at: &str, c: &mut Collector<'_>) {
    match (f.url(), &f.properties.endpoint_url) {
        (None, _) => c.error(
            format!("{at}/properties"),
            format!(
                "an {} forwarding needs properties.endpointUrl (an https:// URL)",
                f.kind
            ),
        ),
        (Some(_), Some(u)) if !u.starts_with("https://") => c.error(
            format!("{at}/properties/endpointUrl"),
            format!("'{u}': Firehose posts to https:// URLs only"),
        ),
        _ => {}
    }
    match &f.properties.api_key {
        None if f.kind != "http-endpoint" => c.error(
            format!("{at}/properties"),
            format!("{} needs properties.apiKey: $Secret('NAME') of a secret holding {{\"api_key\": \"...\"}}", f.kind),
        ),
        None => {}
        Some(v) => match directive(v) {
            Ok(Some(Directive::Secret { key: None, version: None, .. })) => {}
            Ok(Some(Directive::Secret { .. })) => c.error(
                format!("{at}/properties/apiKey"),
                "Firehose reads a whole secret, as {\"api_key\": \"...\"}: write $Secret('NAME'), without a key or version",
            ),
            Ok(_) => c.error(
                format!("{at}/properties/apiKey"),
                "the API key would be in plain text in the request: put it in Secrets Manager as {\"api_key\": \"...\"} and write $Secret('NAME')",
            ),
            Err(msg) => c.error(format!("{at}/properties/apiKey"), msg),
        },
    }
}
