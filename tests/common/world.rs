//! What the deployer's tests share: running bosun-deploy (bounded), moto with the
//! fault-injecting proxy in front of it and the subnets and secret a deploy needs.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::proxy;
use super::*;

pub const DEPLOY: &str = env!("CARGO_BIN_EXE_bosun-deploy");
pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stack/bosun.yaml");

pub fn deploy(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(DEPLOY);
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("AWS_ACCOUNT_ID");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, std::time::Duration::from_secs(120))
}

pub fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// moto, the fault-injecting proxy in front of it, and what a deploy needs that the
/// stack does not create: two subnets of moto's default VPC (CreateService checks
/// them) and the secret the example reads.
pub struct World {
    pub moto: Moto,
    pub proxy: proxy::Proxy,
    pub subnets: Vec<String>,
}

pub fn py(moto: &Moto, code: &str) -> String {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut cmd = Command::new(py);
    cmd.args(["-c", code, &moto.url()]);
    let out = run_bounded(&mut cmd, std::time::Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl World {
    pub fn new() -> World {
        World::with_moto(Moto::start())
    }

    pub fn with_moto(moto: Moto) -> World {
        let subnets = py(&moto, "import boto3,sys; e=boto3.client('ec2', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y'); print(' '.join(s['SubnetId'] for s in e.describe_subnets()['Subnets'][:2]))")
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(subnets.len(), 2);
        py(&moto, "import boto3,sys; boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='x', aws_secret_access_key='y').create_secret(Name='dbSecret', SecretString='{\"password\": \"p\"}')");
        let proxy = proxy::Proxy::start(moto.port);
        World {
            moto,
            proxy,
            subnets,
        }
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.proxy.env()
    }

    /// The example stack, on this world's subnets.
    pub fn example(&self) -> String {
        std::fs::read_to_string(EXAMPLE)
            .unwrap()
            .replace(
                "subnets: [subnet-1, subnet-2]",
                &format!("subnets: [{}, {}]", self.subnets[0], self.subnets[1]),
            )
            .replace("securityGroups: [sg-1]", "securityGroups: []")
    }

    pub fn deploy(&self, args: &[&str]) -> Output {
        deploy(args, &self.env())
    }

    /// `args` stops with exit 4 and a message holding `needle`, having sent no
    /// mutating call.
    pub fn refuses(&self, args: &[&str], needle: &str) {
        self.proxy.record();
        let out = self.deploy(args);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{needle:?} not in\n{}",
            stderr(&out)
        );
        assert_eq!(self.proxy.mutating(), Vec::<String>::new());
    }

    /// `apply --no-wait` of `file` again: it succeeds and sends not one mutating call.
    pub fn reapply_changes_nothing(&self, file: &str) {
        self.proxy.record();
        let out = self.deploy(&["apply", "--no-wait", "--stack", file]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            self.proxy.mutating(),
            Vec::<String>::new(),
            "a re-apply of {file}"
        );
    }

    /// `args` exits with `code`, its stderr holding `needle`.
    pub fn says(&self, args: &[&str], code: i32, needle: &str) -> Output {
        let out = self.deploy(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in\n{err}");
        out
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
