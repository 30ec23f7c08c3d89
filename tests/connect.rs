//! The seeds' last rows, against moto through the test proxy: `connectTo` beyond
//! queues (a private service: Cloud Map and the stack's security group rules; a
//! bucket), each with the variables a connected task gets, and logs forwarded out of
//! AWS (Firehose); each re-applied with no change and taken away again.

#![allow(clippy::unwrap_used)]

mod common;

use common::world::*;
use common::*;

/// A Python snippet's output, with clients for the services these tests read.
fn aws(w: &World, code: &str) -> String {
    py(
        &w.moto,
        &format!("import boto3,sys,json; c=lambda n: boto3.client(n, endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); sd=c('servicediscovery'); ecs=c('ecs'); e=c('ec2'); s3=c('s3'); iam=c('iam'); fh=c('firehose'); logs=c('logs'); sm=c('secretsmanager'); {code}"),
    )
}

/// A private service: Cloud Map's namespace in the tasks' VPC and a Cloud Map service
/// the ECS service registers in; the stack's own group beside the file's, with one
/// inbound rule per port from itself; a connected worker gets the host and port.
/// Every request is valid for the real API; re-apply sends nothing; taking the ports
/// away takes all of it away, the file's network untouched.
#[test]
fn a_private_service_gets_a_dns_name_and_a_rule_from_the_stack_alone() {
    let w = World::new();
    let dir = TempDir::new("private");
    let text = format!(
        "stack: shop
network: {{ subnets: [{}, {}] }}
resources:
  api:
    type: private-service
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/api:1\", includesBosun: true }} }}
      command: [\"api\"]
      ports: [{{ containerPort: 8080 }}, {{ containerPort: 5353, protocol: udp }}]
  worker:
    type: worker-service
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/app:1\", includesBosun: true }} }}
      command: [\"work\"]
      connectTo: [api]
",
        w.subnets[0], w.subnets[1]
    );
    let file = write(&dir, "bosun.yaml", &text);
    let sd = |code: &str| aws(&w, code);
    // A VPC without DNS hostnames would never answer the names: refused before any
    // change, saying how to turn them on.
    let vpc = sd(&format!(
        "print(e.describe_subnets(SubnetIds=['{}'])['Subnets'][0]['VpcId'])",
        w.subnets[0]
    ));
    let vpc = vpc.trim().to_owned();
    sd(&format!(
        "e.modify_vpc_attribute(VpcId='{vpc}', EnableDnsHostnames={{'Value': False}})"
    ));
    w.refuses(
        &["apply", "--no-wait", "--stack", &file],
        &format!("enableDnsHostnames on in VPC {vpc}"),
    );
    sd(&format!(
        "e.modify_vpc_attribute(VpcId='{vpc}', EnableDnsHostnames={{'Value': True}})"
    ));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the stack's own security group"), "{err}");
    let mut recorded = w.proxy.recorded();
    // The namespace, tagged, and the api's Cloud Map service in it, with A records.
    let ns = sd("n=[n for n in sd.list_namespaces()['Namespaces'] if n['Name']=='shop.internal']; print(len(n), n[0]['Id'], n[0]['Type'], sd.list_tags_for_resource(ResourceARN=n[0]['Arn'])['Tags'])");
    assert!(ns.starts_with("1 ns-"), "{ns}");
    assert!(
        ns.contains("DNS_PRIVATE") && ns.contains("'Value': 'shop'"),
        "{ns}"
    );
    let ns_id = ns.split_whitespace().nth(1).unwrap().to_owned();
    let svc = sd("s=[s for s in sd.list_services()['Services'] if s['Name']=='api']; g=sd.get_service(Id=s[0]['Id'])['Service']; print(len(s), g['NamespaceId'], g['Arn'], json.dumps(g['DnsConfig']['DnsRecords']))");
    let parts: Vec<&str> = svc.split_whitespace().collect();
    assert_eq!(&parts[..2], &["1", ns_id.as_str()], "{svc}");
    assert!(svc.contains("\"Type\": \"A\""), "{svc}");
    let registry = parts[2].to_owned();
    // The ECS service registers its tasks there; both services run in the file's
    // subnets with the stack's group added beside (the file gives none).
    let group = sd("print(e.describe_security_groups(Filters=[{'Name':'group-name','Values':['shop-tasks']}])['SecurityGroups'][0]['GroupId'])");
    let group = group.trim().to_owned();
    let svcs = sd("print(json.dumps({s['serviceName']: [s.get('serviceRegistries'), s['networkConfiguration']['awsvpcConfiguration']['securityGroups']] for s in ecs.describe_services(cluster='shop', services=['shop-api','shop-worker'])['services']}))");
    let svcs: serde_json::Value = serde_json::from_str(svcs.trim()).unwrap();
    assert_eq!(
        svcs["shop-api"][0][0]["registryArn"],
        registry.as_str(),
        "{svcs}"
    );
    assert_eq!(svcs["shop-worker"][0], serde_json::json!([]), "{svcs}");
    for s in ["shop-api", "shop-worker"] {
        assert_eq!(svcs[s][1], serde_json::json!([group]), "{svcs}");
    }
    // One inbound rule per port, from the group itself, tagged as the stack's.
    let rules = sd(&format!("print(json.dumps(sorted([[r['IpProtocol'], r['FromPort'], r['ToPort'], r.get('ReferencedGroupInfo',{{}}).get('GroupId'), r.get('CidrIpv4'), {{t['Key']:t['Value'] for t in r.get('Tags',[])}}.get('bosun:stack')] for r in e.describe_security_group_rules(Filters=[{{'Name':'group-id','Values':['{group}']}}])['SecurityGroupRules'] if not r['IsEgress']])))"));
    let rules: serde_json::Value = serde_json::from_str(rules.trim()).unwrap();
    assert_eq!(
        rules,
        serde_json::json!([
            ["tcp", 8080, 8080, group, null, "shop"],
            ["udp", 5353, 5353, group, null, "shop"]
        ])
    );
    // The connected worker's variables.
    let env = sd("d=ecs.describe_task_definition(taskDefinition='shop-worker')['taskDefinition']; print(json.dumps({e['name']:e['value'] for e in d['containerDefinitions'][0]['environment'] if e['name'].startswith('STP_')}))");
    let env: serde_json::Value = serde_json::from_str(env.trim()).unwrap();
    assert_eq!(
        env,
        serde_json::json!({"STP_API_HOST": "api.shop.internal", "STP_API_PORT": "8080"})
    );

    // status says where the service is reached.
    let out = w.deploy(&["status", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "reachable as api.shop.internal on 8080/tcp, 5353/udp (Cloud Map registered)"
        ),
        "{}",
        stdout(&out)
    );

    // Nothing to do the second time.
    w.reapply_changes_nothing(&file);

    // Ports taken away: the registry off the ECS service, then the Cloud Map service,
    // the namespace, the rules and the group go; the subnets stay the file's.
    let plain = text
        .replace("type: private-service", "type: worker-service")
        .replace(
            "      ports: [{ containerPort: 8080 }, { containerPort: 5353, protocol: udp }]\n",
            "",
        )
        .replace("      connectTo: [api]\n", "");
    let plain = write(&dir, "plain.yaml", &plain);
    // As on AWS, the Cloud Map service still holds the tasks of the deployment being
    // replaced, and the namespace its service, for a while: both deletes wait.
    w.proxy.fail("DeleteService", 1, "ResourceInUse");
    w.proxy.fail("DeleteNamespace", 1, "ResourceInUse");
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &plain]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sent = w.proxy.actions();
    for a in ["DeleteService", "DeleteNamespace"] {
        assert_eq!(sent.iter().filter(|x| *x == a).count(), 2, "{a}: {sent:?}");
    }
    recorded.extend(w.proxy.recorded());
    let left = sd("print(len([n for n in sd.list_namespaces()['Namespaces'] if n['Name']=='shop.internal']), len(sd.list_services()['Services']), len(e.describe_security_groups(Filters=[{'Name':'group-name','Values':['shop-tasks']}])['SecurityGroups']), json.dumps([[s.get('serviceRegistries'), s['networkConfiguration']['awsvpcConfiguration']['securityGroups']] for s in ecs.describe_services(cluster='shop', services=['shop-api'])['services']]))");
    assert_eq!(left.trim(), "0 0 0 [[[], []]]", "{left}");

    // Ports back, then the whole stack deleted: nothing of it is left.
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = w.deploy(&["delete", "--yes", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    recorded.extend(w.proxy.recorded());
    let left = sd("print(len(sd.list_namespaces()['Namespaces']), len(sd.list_services()['Services']), len(e.describe_security_groups(Filters=[{'Name':'group-name','Values':['shop-tasks']}])['SecurityGroups']), len([s for s in ecs.describe_services(cluster='shop', services=['shop-api','shop-worker'])['services'] if s['status']=='ACTIVE']))");
    assert_eq!(left.trim(), "0 0 0 0", "{left}");

    // Without `network`: the default VPC's group the tasks already have gets the rules,
    // and it is the services' only group.
    let default = write(
        &dir,
        "default.yaml",
        &text.replace(
            &format!(
                "network: {{ subnets: [{}, {}] }}\n",
                w.subnets[0], w.subnets[1]
            ),
            "",
        ),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &default]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    recorded.extend(w.proxy.recorded());
    let group = sd("print(e.describe_security_groups(Filters=[{'Name':'group-name','Values':['shop-tasks']}])['SecurityGroups'][0]['GroupId'])");
    let group = group.trim();
    let state = sd(&format!("print(json.dumps([sorted([r['IpProtocol'], r['FromPort']] for r in e.describe_security_group_rules(Filters=[{{'Name':'group-id','Values':['{group}']}}])['SecurityGroupRules'] if not r['IsEgress'] and r.get('ReferencedGroupInfo',{{}}).get('GroupId')=='{group}'), sorted(s['networkConfiguration']['awsvpcConfiguration']['securityGroups'] == ['{group}'] for s in ecs.describe_services(cluster='shop', services=['shop-api','shop-worker'])['services'])]))"));
    assert_eq!(
        state.trim(),
        "[[[\"tcp\", 8080], [\"udp\", 5353]], [true, true]]",
        "{state}"
    );
    let out = w.deploy(&["delete", "--yes", "--stack", &default]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_with_models(&dir, &recorded);
}

/// A bucket: private, encrypted, versioned with its lifecycle rules, tagged; a
/// connected worker may read and write its objects and gets its name and ARN. Removed
/// from the file while it holds an object, apply refuses before any change; with
/// `deleteWithObjects` it goes, objects and all. Every request is valid for the real
/// API and every policy parliament-clean.
#[test]
fn a_bucket_is_private_and_goes_with_its_objects_only_when_the_file_says() {
    let w = World::new();
    let dir = TempDir::new("bucket");
    let worker = "  worker:
    type: worker-service
    properties:
      packaging: { type: prebuilt-image, properties: { image: \"repo/app:1\", includesBosun: true } }
      command: [\"work\"]
      environment: [{ name: UPLOADS, value: \"$ResourceParam('uploads', 'name')\" }]
      connectTo: [uploads]
";
    let text = format!(
        "stack: media
network: {{ subnets: [{}] }}
resources:
  uploads:
    type: bucket
    properties:
      versioning: true
      lifecycleRules:
        - {{ type: expiration, properties: {{ daysAfterUpload: 30, prefix: tmp/ }} }}
        - {{ type: non-current-version-expiration, properties: {{ daysAfterVersioned: 7 }} }}
{worker}",
        w.subnets[0]
    );
    let file = write(&dir, "bosun.yaml", &text);
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut recorded = w.proxy.recorded();
    let name = aws(
        &w,
        "print(' '.join(b['Name'] for b in s3.list_buckets()['Buckets']))",
    );
    let name = name.trim().to_owned();
    assert!(
        name.starts_with("media-uploads-") && name.len() == 22,
        "{name}"
    );
    let state = aws(&w, &format!("b='{name}'; print(json.dumps([s3.get_public_access_block(Bucket=b)['PublicAccessBlockConfiguration'], s3.get_bucket_encryption(Bucket=b)['ServerSideEncryptionConfiguration']['Rules'][0]['ApplyServerSideEncryptionByDefault']['SSEAlgorithm'], s3.get_bucket_versioning(Bucket=b).get('Status'), sorted([r['ID'], r.get('Expiration',{{}}).get('Days'), r.get('NoncurrentVersionExpiration',{{}}).get('NoncurrentDays')] for r in s3.get_bucket_lifecycle_configuration(Bucket=b)['Rules']), {{t['Key']:t['Value'] for t in s3.get_bucket_tagging(Bucket=b)['TagSet']}}]))"));
    let state: serde_json::Value = serde_json::from_str(state.trim()).unwrap();
    assert_eq!(
        state,
        serde_json::json!([
            {"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true},
            "AES256",
            "Enabled",
            [["expiration-0", 30, null], ["non-current-version-expiration-1", null, 7]],
            {"bosun:stack": "media"}
        ])
    );
    // The worker's variables and its task role's access: the bucket and its objects.
    let env = aws(&w, "d=ecs.describe_task_definition(taskDefinition='media-worker')['taskDefinition']; print(json.dumps({e['name']:e['value'] for e in d['containerDefinitions'][0]['environment'] if e['name'] in ('UPLOADS','STP_UPLOADS_BUCKET_NAME','STP_UPLOADS_ARN')}))");
    let env: serde_json::Value = serde_json::from_str(env.trim()).unwrap();
    assert_eq!(
        env,
        serde_json::json!({"UPLOADS": name, "STP_UPLOADS_BUCKET_NAME": name, "STP_UPLOADS_ARN": format!("arn:aws:s3:::{name}")})
    );
    let policy = aws(&w, "r=[r for r in iam.list_roles()['Roles'] if r['RoleName']=='media-worker-task'][0]; print(json.dumps(iam.get_role_policy(RoleName=r['RoleName'], PolicyName=iam.list_role_policies(RoleName=r['RoleName'])['PolicyNames'][0])['PolicyDocument']))");
    for want in [
        format!("\"arn:aws:s3:::{name}\""),
        format!("\"arn:aws:s3:::{name}/*\""),
        "s3:PutObject".to_owned(),
        "s3:ListBucket".to_owned(),
    ] {
        assert!(policy.contains(&want), "{want} not in {policy}");
    }

    let out = w.deploy(&["status", "--stack", &file]);
    assert!(
        stdout(&out).contains(&format!("uploads (bucket {name}): deployed")),
        "{}",
        stdout(&out)
    );

    // Nothing to do the second time.
    w.reapply_changes_nothing(&file);

    // Someone put an object in it; the file drops the bucket: refused before any change.
    aws(
        &w,
        &format!("s3.put_object(Bucket='{name}', Key='a.txt', Body=b'x')"),
    );
    let without = format!(
        "stack: media\nnetwork: {{ subnets: [{}] }}\nresources:\n  q:\n    type: sqs-queue\n",
        w.subnets[0]
    );
    let without = write(&dir, "without.yaml", &without);
    w.refuses(
        &["apply", "--no-wait", "--stack", &without],
        &format!("bucket {name} holds objects and would be deleted: set `deleteWithObjects: true`"),
    );
    // And so does delete.
    w.refuses(
        &["delete", "--yes", "--stack", &file],
        &format!("bucket {name} holds objects and would be deleted"),
    );
    // With the file's leave it goes, objects and all (versions included).
    let leave = write(
        &dir,
        "leave.yaml",
        &text.replace(
            "      versioning: true\n",
            "      versioning: true\n      deleteWithObjects: true\n",
        ),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &leave]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    recorded.extend(w.proxy.recorded());
    // The tag alone changes (and the stack's lock is taken and given back).
    assert_eq!(
        w.proxy.mutating(),
        ["PutParameter", "PutBucketTagging", "DeleteParameter"]
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &without]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    recorded.extend(w.proxy.recorded());
    let left = aws(&w, "print(len(s3.list_buckets()['Buckets']))");
    assert_eq!(left.trim(), "0");
    check_with_models(&dir, &recorded);
}

/// Logs forwarded to Datadog (the API key from Secrets Manager) and to any HTTPS
/// endpoint: a Firehose stream each, posting gzip, keeping what it cannot deliver in
/// the stack's expiring bucket; a subscription filter on each log group; the two roles
/// with the least they need. The key itself is in no request bosun-deploy sends and in
/// no output. Re-apply sends nothing; removing `forwarding` removes all of it.
#[test]
fn logs_are_forwarded_through_firehose_with_the_key_kept_in_secrets_manager() {
    let w = World::new();
    let dir = TempDir::new("forward");
    let key = "dd-key-0123456789abcdef";
    let secret = aws(&w, &format!("print(sm.create_secret(Name='datadog', SecretString=json.dumps({{'api_key': '{key}'}}))['ARN'])"));
    let secret = secret.trim().to_owned();
    let text = format!(
        "stack: media
network: {{ subnets: [{}] }}
resources:
  worker:
    type: worker-service
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/app:1\", includesBosun: true }} }}
      command: [\"work\"]
      logging:
        retentionDays: 14
        forwarding: {{ type: datadog, properties: {{ apiKey: \"$Secret('datadog')\", region: eu }} }}
  nightly:
    type: scheduled-job
    properties:
      packaging: {{ type: prebuilt-image, properties: {{ image: \"repo/app:1\", includesBosun: true }} }}
      command: [\"nightly\"]
      schedule: \"rate(1 day)\"
      logging:
        forwarding: {{ type: http-endpoint, properties: {{ endpointUrl: \"https://logs.example.com/in\" }} }}
",
        w.subnets[0]
    );
    let file = write(&dir, "bosun.yaml", &text);
    // A secret without the key Firehose reads: refused before any change.
    aws(
        &w,
        "sm.create_secret(Name='wrongkey', SecretString=json.dumps({'apiKey': 'x'}))",
    );
    let wrong = write(
        &dir,
        "wrong.yaml",
        &text.replace("$Secret('datadog')", "$Secret('wrongkey')"),
    );
    w.refuses(
        &["apply", "--no-wait", "--stack", &wrong],
        "key api_key in secret wrongkey",
    );
    let render = w.deploy(&["render", "--stack", &file]);
    assert_eq!(render.status.code(), Some(0), "{}", stderr(&render));
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut recorded = w.proxy.recorded();
    for (what, text) in [
        ("render", stdout(&render)),
        (
            "apply's output",
            format!("{}{}", stdout(&out), stderr(&out)),
        ),
        (
            "a request",
            recorded
                .iter()
                .map(|r| r.body.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ] {
        assert!(!text.contains(key), "the API key is in {what}");
    }
    let streams = aws(&w, "print(json.dumps({n: (lambda d: [d['Destinations'][0]['HttpEndpointDestinationDescription']['EndpointConfiguration']['Url'], d['Destinations'][0]['HttpEndpointDestinationDescription'].get('SecretsManagerConfiguration', {}).get('SecretARN'), d['Destinations'][0]['HttpEndpointDestinationDescription']['S3BackupMode'], {t['Key']: t['Value'] for t in fh.list_tags_for_delivery_stream(DeliveryStreamName=n)['Tags']}.get('bosun:stack')])(fh.describe_delivery_stream(DeliveryStreamName=n)['DeliveryStreamDescription']) for n in fh.list_delivery_streams()['DeliveryStreamNames']}))");
    let streams: serde_json::Value = serde_json::from_str(streams.trim()).unwrap();
    assert_eq!(
        streams,
        serde_json::json!({
            "media-worker-logs": ["https://aws-kinesis-http-intake.logs.datadoghq.eu/v1/input", secret, "FailedDataOnly", "media"],
            "media-nightly-logs": ["https://logs.example.com/in", null, "FailedDataOnly", "media"],
        })
    );
    let filters = aws(&w, "print(json.dumps(sorted([f['logGroupName'], f['filterName'], f['filterPattern'], f['destinationArn'].split('/')[-1], f['roleArn'].split('/')[-1]] for g in ['/bosun/media/worker', '/bosun/media/nightly'] for f in logs.describe_subscription_filters(logGroupName=g)['subscriptionFilters'])))");
    let filters: serde_json::Value = serde_json::from_str(filters.trim()).unwrap();
    assert_eq!(
        filters,
        serde_json::json!([
            [
                "/bosun/media/nightly",
                "bosun-forwarding",
                "",
                "media-nightly-logs",
                "media-log-subscription"
            ],
            [
                "/bosun/media/worker",
                "bosun-forwarding",
                "",
                "media-worker-logs",
                "media-log-subscription"
            ]
        ])
    );
    // Firehose's role reads that secret alone and writes the failed-logs bucket.
    let role = aws(&w, "print(json.dumps([iam.get_role(RoleName='media-log-delivery')['Role']['AssumeRolePolicyDocument'], iam.get_role_policy(RoleName='media-log-delivery', PolicyName='bosun')['PolicyDocument']]))");
    assert!(
        role.contains("firehose.amazonaws.com") && role.contains("sts:ExternalId"),
        "{role}"
    );
    assert!(role.contains(&format!("\"{secret}\"")), "{role}");
    let buckets = aws(
        &w,
        "print(' '.join(b['Name'] for b in s3.list_buckets()['Buckets']))",
    );
    assert!(
        buckets.trim().starts_with("media-failed-logs-"),
        "{buckets}"
    );
    assert!(role.contains(buckets.trim()), "{role}");

    // Nothing to do the second time.
    w.reapply_changes_nothing(&file);

    // Forwarding taken away: all of it goes, the log groups stay.
    let plain = write(
        &dir,
        "plain.yaml",
        &text
            .replace("        forwarding: { type: datadog, properties: { apiKey: \"$Secret('datadog')\", region: eu } }\n", "")
            .replace("      logging:\n        forwarding: { type: http-endpoint, properties: { endpointUrl: \"https://logs.example.com/in\" } }\n", ""),
    );
    w.proxy.record();
    let out = w.deploy(&["apply", "--no-wait", "--stack", &plain]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    recorded.extend(w.proxy.recorded());
    let left = aws(&w, "print(len(fh.list_delivery_streams()['DeliveryStreamNames']), len(s3.list_buckets()['Buckets']), sum(len(logs.describe_subscription_filters(logGroupName=g)['subscriptionFilters']) for g in ['/bosun/media/worker', '/bosun/media/nightly']), len([r for r in iam.list_roles()['Roles'] if r['RoleName'].startswith('media-log-')]))");
    assert_eq!(left.trim(), "0 0 0 0", "{left}");
    check_with_models(&dir, &recorded);
}
