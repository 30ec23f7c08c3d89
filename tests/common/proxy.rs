//! A small fault-injecting HTTP proxy in front of moto_server, answering for AWS
//! where moto cannot: refused reads (AccessDenied in each protocol's own error shape),
//! throttling on first attempts, `ListServices` and `ListTasks` paged by 10 as AWS
//! pages them, latency per call, a client killed right after its N-th mutating call
//! went through, and the fields that AWS returns and moto does not: of a service
//! (capacityProviderStrategy, deploymentConfiguration), of a task (createdAt, the
//! time the proxy saw RunTask create it; lastStatus RUNNING) and DescribeTasks'
//! `MISSING` failures. It records every request (action, protocol, body).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a request was encoded, which decides the shape of an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `X-Amz-Target` + JSON body (ECS, Logs, Application Auto Scaling, SQS).
    Json,
    /// `Action=...` form body, XML answers (IAM, STS, EC2, CloudWatch).
    Query,
    /// REST-JSON (Scheduler): the action is the method and path.
    Rest,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub action: String,
    pub protocol: Protocol,
    /// The service, from `X-Amz-Target`'s prefix or the signing scope.
    pub service: String,
    /// The method and path (with the query string), as sent.
    pub method: String,
    pub path: String,
    pub body: String,
}

impl Request {
    /// The fields of a query-protocol (form) body, decoded.
    pub fn form(&self) -> std::collections::BTreeMap<String, String> {
        self.body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (form_decode(k), form_decode(v)))
            .collect()
    }
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct Rules {
    deny: Vec<String>,
    throttle: HashMap<String, u32>,
    /// Action → (attempts left to fail, AWS error code, message).
    fail: HashMap<String, (u32, String, String)>,
    page_lists: bool,
    latency: Duration,
    /// Kill this pid right after the N-th mutating call reached moto.
    kill_after: Option<(u32, i32, i32)>,
    mutating_seen: u32,
    recorded: Vec<Request>,
    /// Service name → what CreateService/UpdateService sent that moto does not keep.
    service_extras: HashMap<String, serde_json::Value>,
    /// Task ARN → createdAt (seconds since the epoch).
    task_created: HashMap<String, f64>,
    /// The registry host that ECR's answers name in place of the account's
    /// `{account}.dkr.ecr.{region}.amazonaws.com` (moto has no registry behind it).
    ecr_registry: Option<String>,
    /// The rollout state of every service's PRIMARY deployment, and the service events
    /// (newest first), that DescribeServices answers (moto's deployments never roll).
    rollout: Option<(String, Vec<String>)>,
    /// How the tasks RunTask starts from now end.
    task_end: Option<TaskEnd>,
    /// Task ARN → how it ends, and how many DescribeTasks have seen it.
    ending: HashMap<String, (TaskEnd, u32)>,
    /// Task ARNs whose scale-in protection GetTaskProtection reports on.
    protected: Vec<String>,
    /// Task definition families whose containers the proxy gave a memory for moto.
    padded: std::collections::HashSet<String>,
    /// IAM's policy simulator, answered here (moto has none): the actions it denies.
    simulator: Option<Vec<String>>,
}

/// How a task ends, as DescribeTasks tells it (moto never runs one to its end).
#[derive(Debug, Clone, Default)]
pub struct TaskEnd {
    /// DescribeTasks reads that still see it RUNNING.
    pub polls: u32,
    /// The app container's exit code; none: it never ran.
    pub exit_code: Option<i32>,
    /// ECS's stoppedReason.
    pub reason: String,
    /// The log group and stream prefix its lines go to (`PREFIX/app/ID`), and the
    /// lines, written when RunTask starts it.
    pub log: Option<(String, String)>,
    pub lines: Vec<String>,
}

pub struct Proxy {
    pub port: u16,
    rules: Arc<Mutex<Rules>>,
}

/// Whether an action changes something (by AWS's naming).
pub fn is_mutating(action: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Create",
        "Put",
        "Register",
        "Update",
        "Set",
        "Tag",
        "Delete",
        "Deregister",
        "Untag",
        "Attach",
        "Detach",
        "Remove",
        "Add",
        "Modify",
        "Subscribe",
        "Unsubscribe",
        "Authorize",
        "Revoke",
    ];
    PREFIXES.iter().any(|p| action.starts_with(p))
}

impl Proxy {
    /// Start a proxy in front of moto on `moto_port`.
    pub fn start(moto_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let rules = Arc::new(Mutex::new(Rules::default()));
        let r = rules.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let r = r.clone();
                thread::spawn(move || {
                    let _ = serve(conn, moto_port, &r);
                });
            }
        });
        Proxy { port, rules }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points the SDK at the proxy.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        super::sdk_env(self.url())
    }

    pub fn deny(&self, action: &str) {
        self.rules.lock().unwrap().deny.push(action.to_owned());
    }

    pub fn allow_all(&self) {
        self.rules.lock().unwrap().deny.clear();
    }

    /// Answer `action`'s first `n` attempts with throttling.
    pub fn throttle(&self, action: &str, n: u32) {
        self.rules
            .lock()
            .unwrap()
            .throttle
            .insert(action.to_owned(), n);
    }

    /// Answer `action`'s first `n` attempts with AWS's error `code` (a 400).
    pub fn fail(&self, action: &str, n: u32, code: &str) {
        self.fail_with(action, n, code, "failed by the test proxy");
    }

    /// Fail the next `n` calls of `action` with AWS's error `code` and `message`.
    pub fn fail_with(&self, action: &str, n: u32, code: &str, message: &str) {
        self.rules
            .lock()
            .unwrap()
            .fail
            .insert(action.to_owned(), (n, code.to_owned(), message.to_owned()));
    }

    /// Answer ECR's calls as if the account's ECR registry were `host` (a real
    /// registry on loopback): its endpoint and repository URIs name it.
    pub fn ecr_registry(&self, host: &str) {
        self.rules.lock().unwrap().ecr_registry = Some(host.to_owned());
    }

    /// Page `ListServices` and `ListTasks` by 10, as AWS does (moto does not).
    /// Answer DescribeServices with this rollout state on every PRIMARY deployment and
    /// these events (newest first), as ECS reports a deployment in progress.
    pub fn rollout(&self, state: &str, events: &[&str]) {
        self.rules.lock().unwrap().rollout = Some((
            state.to_owned(),
            events.iter().map(|e| (*e).to_owned()).collect(),
        ));
    }

    /// The tasks RunTask starts from now on end as `end` says.
    pub fn tasks_end(&self, end: TaskEnd) {
        self.rules.lock().unwrap().task_end = Some(end);
    }

    /// Report scale-in protection on for this task.
    /// Answer SimulatePrincipalPolicy as IAM would for a caller whose policies deny
    /// `actions` alone (`implicitDeny`) and allow the rest.
    pub fn simulate_denying(&self, actions: &[&str]) {
        self.rules.lock().unwrap().simulator =
            Some(actions.iter().map(|a| (*a).to_owned()).collect());
    }

    pub fn protect(&self, arn: &str) {
        self.rules.lock().unwrap().protected.push(arn.to_owned());
    }

    pub fn page_lists(&self, on: bool) {
        self.rules.lock().unwrap().page_lists = on;
    }

    /// Give a task the creation time `secs` (since the epoch) in DescribeTasks.
    pub fn task_created(&self, arn: &str, secs: f64) {
        self.rules
            .lock()
            .unwrap()
            .task_created
            .insert(arn.to_owned(), secs);
    }

    pub fn latency(&self, d: Duration) {
        self.rules.lock().unwrap().latency = d;
    }

    /// SIGKILL `pid` right after the `n`-th mutating call from now has reached moto
    /// (before its answer is sent back).
    pub fn kill_after(&self, n: u32, pid: i32) {
        let mut r = self.rules.lock().unwrap();
        r.mutating_seen = 0;
        r.kill_after = Some((n, pid, libc::SIGKILL));
    }

    /// SIGINT `pid` (a person's Ctrl-C) right after the `n`-th mutating call from now
    /// has reached moto; its answer is still sent back.
    pub fn interrupt_after(&self, n: u32, pid: i32) {
        let mut r = self.rules.lock().unwrap();
        r.mutating_seen = 0;
        r.kill_after = Some((n, pid, libc::SIGINT));
    }

    pub fn clear_kill(&self) {
        self.rules.lock().unwrap().kill_after = None;
    }

    /// Forget what was recorded.
    pub fn record(&self) {
        self.rules.lock().unwrap().recorded.clear();
    }

    pub fn recorded(&self) -> Vec<Request> {
        self.rules.lock().unwrap().recorded.clone()
    }

    /// The first recorded request of `action` (the test fails when there is none).
    pub fn sent(&self, action: &str) -> Request {
        self.recorded()
            .into_iter()
            .find(|r| r.action == action)
            .unwrap_or_else(|| panic!("{action} not sent"))
    }

    pub fn actions(&self) -> Vec<String> {
        self.recorded().into_iter().map(|r| r.action).collect()
    }

    pub fn mutating(&self) -> Vec<String> {
        self.actions()
            .into_iter()
            .filter(|a| is_mutating(a))
            .collect()
    }
}

struct Http {
    head: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_message(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Http>> {
    let mut head = String::new();
    if r.read_line(&mut head)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut msg = Http {
        head: head.trim_end().to_owned(),
        headers,
        body: Vec::new(),
    };
    if msg
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            msg.body.extend_from_slice(&chunk[..n]);
        }
        msg.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"));
    } else {
        let len: usize = msg
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        msg.body = vec![0; len];
        r.read_exact(&mut msg.body)?;
    }
    Ok(Some(msg))
}

fn classify(req: &Http) -> Request {
    let mut r = classify_action(req);
    let mut parts = req.head.split_whitespace();
    r.method = parts.next().unwrap_or("").to_owned();
    r.path = parts.next().unwrap_or("").to_owned();
    r
}

fn classify_action(req: &Http) -> Request {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    if let Some(target) = req.header("x-amz-target") {
        let (svc, action) = target.split_once('.').unwrap_or(("", target));
        return Request {
            action: action.to_owned(),
            protocol: Protocol::Json,
            service: svc.to_owned(),
            method: String::new(),
            path: String::new(),
            body,
        };
    }
    let scope = req
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("")
        .to_owned();
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return Request {
            action: action.to_owned(),
            protocol: Protocol::Query,
            service: scope,
            method: String::new(),
            path: String::new(),
            body,
        };
    }
    // REST (Scheduler, S3): name the action from the method and the path.
    let mut parts = req.head.split_whitespace();
    let method = parts.next().unwrap_or("");
    let full = parts.next().unwrap_or("");
    if scope == "s3" {
        return Request {
            action: s3_action(method, full),
            protocol: Protocol::Rest,
            service: scope,
            method: String::new(),
            path: String::new(),
            body,
        };
    }
    let path = full.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let action = match (method, segs.first().copied(), segs.len()) {
        ("GET", Some("schedule-groups"), 1) => "ListScheduleGroups",
        ("GET", Some("schedules"), 1) => "ListSchedules",
        ("POST", Some("schedule-groups"), _) => "CreateScheduleGroup",
        ("GET", Some("schedule-groups"), _) => "GetScheduleGroup",
        ("DELETE", Some("schedule-groups"), _) => "DeleteScheduleGroup",
        ("POST", Some("schedules"), _) => "CreateSchedule",
        ("PUT", Some("schedules"), _) => "UpdateSchedule",
        ("GET", Some("schedules"), _) => "GetSchedule",
        ("DELETE", Some("schedules"), _) => "DeleteSchedule",
        ("GET", Some("tags"), _) => "ListTagsForResource",
        ("POST", Some("tags"), _) => "TagResource",
        ("DELETE", Some("tags"), _) => "UntagResource",
        _ => "Unknown",
    };
    Request {
        action: action.to_owned(),
        protocol: Protocol::Rest,
        service: scope,
        method: String::new(),
        path: String::new(),
        body,
    }
}

/// An S3 action (path-style: `/bucket[/key][?subresource]`): the SDK's `x-id` where it
/// sends one, else the method and the bucket's subresource.
fn s3_action(method: &str, full: &str) -> String {
    let (path, query) = full.split_once('?').unwrap_or((full, ""));
    let keys: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split('=').next().unwrap_or(""))
        .collect();
    if let Some(id) = query.split('&').find_map(|kv| kv.strip_prefix("x-id=")) {
        return id.to_owned();
    }
    let object = path.trim_matches('/').contains('/');
    let sub = [
        ("tagging", "BucketTagging"),
        ("versioning", "BucketVersioning"),
        ("publicAccessBlock", "PublicAccessBlock"),
        ("encryption", "BucketEncryption"),
        ("lifecycle", "BucketLifecycleConfiguration"),
    ]
    .iter()
    .find(|(k, _)| keys.contains(k));
    let name = match (method, sub) {
        ("GET", Some((_, s))) => format!("Get{s}"),
        ("PUT", Some((_, s))) => format!("Put{s}"),
        ("DELETE", Some((_, "BucketLifecycleConfiguration"))) => "DeleteBucketLifecycle".into(),
        ("DELETE", Some((_, s))) => format!("Delete{s}"),
        ("POST", _) if keys.contains(&"delete") => "DeleteObjects".into(),
        ("GET", _) if keys.contains(&"versions") => "ListObjectVersions".into(),
        ("GET", _) if path == "/" => "ListBuckets".into(),
        ("GET", _) if !object => "ListObjects".into(),
        ("HEAD", _) if !object => "HeadBucket".into(),
        ("PUT", _) if !object => "CreateBucket".into(),
        ("DELETE", _) if !object => "DeleteBucket".into(),
        ("PUT", _) => "PutObject".into(),
        ("GET", _) => "GetObject".into(),
        ("DELETE", _) => "DeleteObject".into(),
        _ => "Unknown".into(),
    };
    name
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()
}

/// An error answer in the request's own protocol.
fn error(
    conn: &mut TcpStream,
    req: &Request,
    status: &str,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    match req.protocol {
        Protocol::Json => {
            let body = serde_json::json!({ "__type": code, "message": message }).to_string();
            respond(
                conn,
                status,
                &[
                    ("Content-Type", "application/x-amz-json-1.1".into()),
                    ("x-amzn-query-error", format!("{code};Sender")),
                ],
                body.as_bytes(),
            )
        }
        Protocol::Query if req.service == "ec2" => {
            let body = format!("<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>proxy</RequestID></Response>");
            respond(
                conn,
                status,
                &[("Content-Type", "text/xml".into())],
                body.as_bytes(),
            )
        }
        Protocol::Query => {
            let body = format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>");
            respond(
                conn,
                status,
                &[("Content-Type", "text/xml".into())],
                body.as_bytes(),
            )
        }
        Protocol::Rest => {
            let body = serde_json::json!({ "Message": message }).to_string();
            respond(
                conn,
                status,
                &[
                    ("Content-Type", "application/json".into()),
                    ("x-amzn-ErrorType", code.into()),
                ],
                body.as_bytes(),
            )
        }
    }
}

/// Send one request to moto and read its whole answer.
fn forward(moto_port: u16, req: &Http, body: &[u8]) -> std::io::Result<Http> {
    let mut up = TcpStream::connect(("127.0.0.1", moto_port))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = format!("{}\r\n", req.head);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    up.write_all(out.as_bytes())?;
    up.write_all(body)?;
    let mut r = BufReader::new(up);
    let mut msg = read_message(&mut r)?.ok_or_else(|| std::io::Error::other("moto closed"))?;
    if msg.header("content-length").is_none() {
        r.read_to_end(&mut msg.body)?;
    }
    Ok(msg)
}

fn serve(conn: TcpStream, moto_port: u16, rules: &Mutex<Rules>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    while let Some(msg) = read_message(&mut reader)? {
        let req = classify(&msg);
        let (deny, throttled, latency, page, failing) = {
            let mut r = rules.lock().unwrap();
            r.recorded.push(req.clone());
            let failing = match r.fail.get_mut(&req.action) {
                Some((n, code, message)) if *n > 0 => {
                    *n -= 1;
                    Some((code.clone(), message.clone()))
                }
                _ => None,
            };
            let deny = r.deny.contains(&req.action);
            let throttled = match r.throttle.get_mut(&req.action) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            };
            (deny, throttled, r.latency, r.page_lists, failing)
        };
        thread::sleep(latency);
        if let Some((code, message)) = failing {
            error(&mut conn, &req, "400 Bad Request", &code, &message)?;
            continue;
        }
        if deny {
            let code = match req.protocol {
                Protocol::Json if req.service.starts_with("AmazonSQS") => "AccessDenied",
                Protocol::Json | Protocol::Rest => "AccessDeniedException",
                Protocol::Query => "AccessDenied",
            };
            let status = if req.protocol == Protocol::Query {
                "403 Forbidden"
            } else {
                "400 Bad Request"
            };
            error(
                &mut conn,
                &req,
                status,
                code,
                &format!("User is not authorized to perform: {}", req.action),
            )?;
            continue;
        }
        if throttled {
            let code = if req.protocol == Protocol::Query {
                "Throttling"
            } else {
                "ThrottlingException"
            };
            error(&mut conn, &req, "400 Bad Request", code, "Rate exceeded")?;
            continue;
        }
        // Answered here: moto has no ECS Exec and no task protection.
        if req.action == "ExecuteCommand" {
            let asked: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
            let task = asked["task"].as_str().unwrap_or_default();
            let body = serde_json::json!({
                "clusterArn": format!("arn:aws:ecs:us-east-1:123456789012:cluster/{}", asked["cluster"].as_str().unwrap_or_default()),
                "taskArn": task,
                "containerName": asked["container"],
                "containerArn": format!("{task}/container"),
                "interactive": true,
                "session": { "sessionId": "ecs-execute-command-0123", "streamUrl": "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/ecs-execute-command-0123", "tokenValue": "token-from-the-proxy" },
            });
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/x-amz-json-1.1".into())],
                body.to_string().as_bytes(),
            )?;
            continue;
        }
        let simulator = rules.lock().unwrap().simulator.clone();
        if let (Some(deny), "SimulatePrincipalPolicy") = (simulator, req.action.as_str()) {
            let form = req.form();
            let members = |prefix: &str| -> Vec<String> {
                (1..)
                    .map_while(|i| form.get(&format!("{prefix}.member.{i}")).cloned())
                    .collect()
            };
            let resources = members("ResourceArns");
            let resource = resources.first().cloned().unwrap_or_else(|| "*".into());
            let results: String = members("ActionNames")
                .iter()
                .map(|a| {
                    let decision = if deny.contains(a) { "implicitDeny" } else { "allowed" };
                    format!("<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{resource}</EvalResourceName><EvalDecision>{decision}</EvalDecision><MatchedStatements/><MissingContextValues/></member>")
                })
                .collect();
            let body = format!("<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>");
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "text/xml".into())],
                body.as_bytes(),
            )?;
            continue;
        }
        if req.action == "GetTaskProtection" {
            let asked: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
            let protected = rules.lock().unwrap().protected.clone();
            let tasks: Vec<serde_json::Value> = asked["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .map(|t| {
                    let on = protected.iter().any(|p| p == t);
                    let mut p = serde_json::json!({ "taskArn": t, "protectionEnabled": on });
                    if on {
                        p["expirationDate"] = serde_json::json!(1_796_000_000.0);
                    }
                    p
                })
                .collect();
            let body = serde_json::json!({ "protectedTasks": tasks, "failures": [] });
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/x-amz-json-1.1".into())],
                body.to_string().as_bytes(),
            )?;
            continue;
        }
        if page && matches!(req.action.as_str(), "ListServices" | "ListTasks") {
            list_paged(&mut conn, moto_port, &msg, &req)?;
            continue;
        }
        // moto's RunTask adds up the containers' own memory, which a Fargate task
        // definition need not have (the task's is enough): it is given the task's, and
        // not shown again in what moto answers.
        let sent = if req.action == "RegisterTaskDefinition" {
            pad_container_memory(rules, &msg.body)
        } else {
            msg.body.clone()
        };
        let mut answer = forward(moto_port, &msg, &sent)?;
        if matches!(
            req.action.as_str(),
            "RegisterTaskDefinition" | "DescribeTaskDefinition"
        ) {
            answer.body = unpad_container_memory(rules, &answer.body);
        }
        if matches!(req.action.as_str(), "CreateService" | "UpdateService") {
            remember_service(rules, &req);
        }
        if req.action == "DescribeServices" {
            answer.body = patch_services(rules, &answer.body);
        }
        if req.action == "RunTask" {
            remember_tasks(rules, &answer.body);
            start_ending(rules, moto_port, &answer.body);
        }
        if req.action == "DescribeTasks" {
            answer.body = patch_tasks(rules, moto_port, &req, &answer.body);
        }
        if answer.head.contains(" 403") && answer.body.starts_with(b"<") && req.service != "ec2" {
            answer = denial_as_aws_answers(&req, answer);
        }
        let ecr = rules.lock().unwrap().ecr_registry.clone();
        if let Some(host) = ecr.filter(|_| req.service.starts_with("AmazonEC2ContainerRegistry")) {
            let text = String::from_utf8_lossy(&answer.body)
                .replace(
                    "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
                    &format!("http://{host}"),
                )
                .replace("123456789012.dkr.ecr.us-east-1.amazonaws.com", &host);
            answer.body = text.into_bytes();
        }
        if is_mutating(&req.action) {
            let kill = {
                let mut r = rules.lock().unwrap();
                r.mutating_seen += 1;
                match r.kill_after {
                    Some((n, pid, sig)) if r.mutating_seen >= n => {
                        r.kill_after = None;
                        Some((pid, sig))
                    }
                    _ => None,
                }
            };
            if let Some((pid, sig)) = kill {
                // SAFETY: kill(2) on a pid the test started.
                unsafe { libc::kill(pid, sig) };
                if sig == libc::SIGKILL {
                    // The call took effect; its caller never hears of it.
                    return Ok(());
                }
            }
        }
        relay(&mut conn, &answer)?;
    }
    Ok(())
}

/// moto refuses a call for want of permission in one XML shape (`<Errors><Error>`,
/// moto/core/exceptions.py); AWS answers it in the call's protocol: JSON
/// (`AccessDeniedException`) for the JSON protocols, `<ErrorResponse><Error>` for the
/// query ones, which is what the SDK reads (EC2's own shape is moto's already).
fn denial_as_aws_answers(req: &Request, mut answer: Http) -> Http {
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let between = |tag: &str| {
        text.split(&format!("<{tag}>"))
            .nth(1)
            .and_then(|r| r.split(&format!("</{tag}>")).next())
            .unwrap_or("")
            .to_owned()
    };
    let (code, message) = (between("Code"), between("Message"));
    match req.protocol {
        Protocol::Json => {
            answer.body =
                serde_json::json!({ "__type": format!("{code}Exception"), "message": message })
                    .to_string()
                    .into_bytes();
            for (k, v) in answer.headers.iter_mut() {
                if k.eq_ignore_ascii_case("content-type") {
                    *v = "application/x-amz-json-1.1".into();
                }
            }
        }
        Protocol::Query => {
            answer.body = format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>0</RequestId></ErrorResponse>").into_bytes();
        }
        Protocol::Rest => {}
    }
    answer
}

/// Send moto's answer on as it is (its body may have been patched).
fn relay(conn: &mut TcpStream, answer: &Http) -> std::io::Result<()> {
    let status = answer
        .head
        .split_once(' ')
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let headers: Vec<(&str, String)> = answer
        .headers
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("content-length")
                && !k.eq_ignore_ascii_case("transfer-encoding")
                && !k.eq_ignore_ascii_case("connection")
        })
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    respond(conn, &status, &headers, &answer.body)
}

fn remember_service(rules: &Mutex<Rules>, req: &Request) {
    let Ok(body) = serde_json::from_str::<serde_json::Value>(&req.body) else {
        return;
    };
    let name = body["serviceName"]
        .as_str()
        .or_else(|| body["service"].as_str())
        .unwrap_or_default()
        .to_owned();
    let mut r = rules.lock().unwrap();
    let extras = r
        .service_extras
        .entry(name)
        .or_insert_with(|| serde_json::json!({}));
    // An empty strategy takes a service back to its launch type, as AWS does (from
    // Fargate's providers to FARGATE, from an Auto Scaling group's to EC2); moto
    // would report its own default.
    if body["capacityProviderStrategy"]
        .as_array()
        .is_some_and(|a| a.is_empty())
    {
        let fargate = extras["capacityProviderStrategy"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| {
                i["capacityProvider"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("FARGATE"))
            });
        if let Some(o) = extras.as_object_mut() {
            o.remove("capacityProviderStrategy");
            o.insert(
                "launchType".into(),
                serde_json::json!(if fargate { "FARGATE" } else { "EC2" }),
            );
        }
    } else if !body["capacityProviderStrategy"].is_null() {
        extras["capacityProviderStrategy"] = body["capacityProviderStrategy"].clone();
        if let Some(o) = extras.as_object_mut() {
            o.remove("launchType");
        }
    }
    if !body["deploymentConfiguration"].is_null() {
        extras["deploymentConfiguration"] = body["deploymentConfiguration"].clone();
    }
}

/// What AWS returns of a service and moto does not: the capacity provider strategy
/// (then no launch type) and the deployment configuration, as they were sent.
fn patch_services(rules: &Mutex<Rules>, body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let r = rules.lock().unwrap();
    if let Some(services) = v["services"].as_array_mut() {
        for s in services {
            let name = s["serviceName"].as_str().unwrap_or_default().to_owned();
            let Some(extras) = r.service_extras.get(&name) else {
                continue;
            };
            if let Some(strategy) = extras.get("capacityProviderStrategy") {
                s["capacityProviderStrategy"] = strategy.clone();
                if let Some(o) = s.as_object_mut() {
                    o.remove("launchType");
                }
            }
            if let Some(dc) = extras.get("deploymentConfiguration") {
                s["deploymentConfiguration"] = dc.clone();
            }
            if let Some(lt) = extras.get("launchType") {
                s["launchType"] = lt.clone();
            }
        }
    }
    if let (Some((state, events)), Some(services)) = (&r.rollout, v["services"].as_array_mut()) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        for s in services {
            let deployments = s["deployments"].as_array().cloned().unwrap_or_default();
            let mut primary = deployments
                .into_iter()
                .find(|d| d["status"] == "PRIMARY")
                .unwrap_or_else(|| serde_json::json!({ "status": "PRIMARY", "id": "ecs-svc/1" }));
            primary["rolloutState"] = serde_json::json!(state);
            s["deployments"] = serde_json::json!([primary]);
            s["events"] = serde_json::Value::Array(
                events
                    .iter()
                    .enumerate()
                    .map(|(i, m)| serde_json::json!({ "id": format!("ev-{i}"), "createdAt": now, "message": m }))
                    .collect(),
            );
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

/// The time RunTask created each task: now, later than any task before it.
fn remember_tasks(rules: &Mutex<Rules>, body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let mut r = rules.lock().unwrap();
    let latest = r.task_created.values().copied().fold(0.0, f64::max);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut at = now.max(latest + 0.001);
    for t in v["tasks"].as_array().into_iter().flatten() {
        if let Some(arn) = t["taskArn"].as_str() {
            r.task_created.insert(arn.to_owned(), at);
            at += 0.001;
        }
    }
}

/// DescribeTasks as AWS answers it: createdAt on every task, lastStatus RUNNING for
/// one ECS wants running, and a `MISSING` failure for each ARN it does not know.
fn patch_tasks(rules: &Mutex<Rules>, moto_port: u16, req: &Request, body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let asked: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
    let mut r = rules.lock().unwrap();
    let mut found = Vec::new();
    let mut stops = Vec::new();
    for t in v["tasks"].as_array_mut().into_iter().flatten() {
        let arn = t["taskArn"].as_str().unwrap_or_default().to_owned();
        if let Some(at) = r.task_created.get(&arn) {
            t["createdAt"] = serde_json::json!(at);
        }
        if t["desiredStatus"] == "RUNNING" {
            t["lastStatus"] = serde_json::json!("RUNNING");
        }
        let id = arn.rsplit('/').next().unwrap_or_default().to_owned();
        for (i, c) in t["containers"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if c["runtimeId"].is_null() {
                c["runtimeId"] = serde_json::json!(format!("{id}-{i}"));
            }
        }
        if let Some((end, seen)) = r.ending.get_mut(&arn) {
            *seen += 1;
            if *seen == end.polls + 1 {
                // moto stops it too, so its lists agree (ListTasks STOPPED).
                stops.push((
                    t["clusterArn"].as_str().unwrap_or_default().to_owned(),
                    arn.clone(),
                ));
            }
            if *seen > end.polls {
                t["lastStatus"] = serde_json::json!("STOPPED");
                t["desiredStatus"] = serde_json::json!("STOPPED");
                t["stoppedReason"] = serde_json::json!(end.reason);
                t["stopCode"] = serde_json::json!(if end.exit_code.is_some() {
                    "EssentialContainerExited"
                } else {
                    "TaskFailedToStart"
                });
                for c in t["containers"].as_array_mut().into_iter().flatten() {
                    c["lastStatus"] = serde_json::json!("STOPPED");
                    match end.exit_code {
                        Some(code) => c["exitCode"] = serde_json::json!(code),
                        None => {
                            if let Some(o) = c.as_object_mut() {
                                o.remove("exitCode");
                            }
                            c["reason"] = serde_json::json!(end.reason);
                        }
                    }
                }
            }
        }
        found.push(arn);
    }
    let missing: Vec<serde_json::Value> = asked["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .filter(|a| !found.iter().any(|f| f == a))
        .map(|a| serde_json::json!({ "arn": a, "reason": "MISSING" }))
        .collect();
    v["failures"] = serde_json::json!(missing);
    drop(r);
    for (cluster, task) in stops {
        let _ = moto_json(
            moto_port,
            "ecs",
            "AmazonEC2ContainerServiceV20141113.StopTask",
            &serde_json::json!({ "cluster": cluster, "task": task, "reason": "ended by the test proxy" }),
        );
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

/// ListServices and ListTasks as AWS answers them: ten at a time, with a nextToken.
fn list_paged(
    conn: &mut TcpStream,
    moto_port: u16,
    msg: &Http,
    req: &Request,
) -> std::io::Result<()> {
    let mut body: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
    let start: usize = body["nextToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if let Some(o) = body.as_object_mut() {
        o.remove("nextToken");
        o.remove("maxResults");
    }
    let answer = forward(moto_port, msg, body.to_string().as_bytes())?;
    let status = answer
        .head
        .split_once(' ')
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    let all = match serde_json::from_slice::<serde_json::Value>(&answer.body) {
        Ok(all) if status.starts_with('2') => all,
        _ => return relay(conn, &answer),
    };
    let key = if req.action == "ListTasks" {
        "taskArns"
    } else {
        "serviceArns"
    };
    let arns: Vec<serde_json::Value> = all[key].as_array().cloned().unwrap_or_default();
    let page: Vec<serde_json::Value> = arns.iter().skip(start).take(10).cloned().collect();
    let mut out = serde_json::json!({ key: page });
    if start + 10 < arns.len() {
        out["nextToken"] = serde_json::json!((start + 10).to_string());
    }
    let text = out.to_string();
    respond(
        conn,
        &status,
        &[("Content-Type", "application/x-amz-json-1.1".into())],
        text.as_bytes(),
    )
}

/// RunTask started these tasks: each ends as the test asked, its log lines written
/// to moto now.
fn start_ending(rules: &Mutex<Rules>, moto_port: u16, body: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let Some(end) = rules.lock().unwrap().task_end.clone() else {
        return;
    };
    for t in v["tasks"].as_array().into_iter().flatten() {
        let Some(arn) = t["taskArn"].as_str() else {
            continue;
        };
        if let Some((group, prefix)) = &end.log {
            let id = arn.rsplit('/').next().unwrap_or_default();
            let stream = format!("{prefix}/app/{id}");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as i64;
            let _ = moto_json(
                moto_port,
                "logs",
                "Logs_20140328.CreateLogStream",
                &serde_json::json!({ "logGroupName": group, "logStreamName": stream }),
            );
            let events: Vec<serde_json::Value> = end
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| serde_json::json!({ "timestamp": now + i as i64, "message": l }))
                .collect();
            if !events.is_empty() {
                let _ = moto_json(
                    moto_port,
                    "logs",
                    "Logs_20140328.PutLogEvents",
                    &serde_json::json!({ "logGroupName": group, "logStreamName": stream, "logEvents": events }),
                );
            }
        }
        rules
            .lock()
            .unwrap()
            .ending
            .insert(arn.to_owned(), (end.clone(), 0));
    }
}

/// One JSON-protocol call straight to moto (it checks no signature).
fn moto_json(
    moto_port: u16,
    service: &str,
    target: &str,
    body: &serde_json::Value,
) -> std::io::Result<Http> {
    let body = body.to_string().into_bytes();
    let req = Http {
        head: "POST / HTTP/1.1".into(),
        headers: vec![
            ("Host".into(), format!("127.0.0.1:{moto_port}")),
            ("X-Amz-Target".into(), target.into()),
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("Authorization".into(), format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0")),
        ],
        body: Vec::new(),
    };
    forward(moto_port, &req, &body)
}

fn pad_container_memory(rules: &Mutex<Rules>, body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let Some(memory) = v["memory"].as_str().and_then(|m| m.parse::<i64>().ok()) else {
        return body.to_vec();
    };
    let mut padded = false;
    for c in v["containerDefinitions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if c["memory"].is_null() && c["memoryReservation"].is_null() {
            c["memory"] = serde_json::json!(memory);
            padded = true;
        }
    }
    if padded {
        let family = v["family"].as_str().unwrap_or_default().to_owned();
        rules.lock().unwrap().padded.insert(family);
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

fn unpad_container_memory(rules: &Mutex<Rules>, body: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let td = &mut v["taskDefinition"];
    let family = td["family"].as_str().unwrap_or_default().to_owned();
    if !rules.lock().unwrap().padded.contains(&family) {
        return body.to_vec();
    }
    for c in td["containerDefinitions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if let Some(o) = c.as_object_mut() {
            o.remove("memory");
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}
