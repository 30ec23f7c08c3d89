//! The deployer's errors, and the one place that maps them to exit codes.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Exit codes of `bosun-deploy` (documented in docs/reference.md).
pub mod exit {
    /// Done; for `diff`: nothing would change.
    pub const OK: u8 = 0;
    /// `diff` only: there are changes.
    pub const CHANGES: u8 = 1;
    /// A usage error: bad flag, unknown resource name, a stack file that cannot be
    /// read.
    pub const USAGE: u8 = 2;
    /// The stack file is invalid.
    pub const INVALID: u8 = 3;
    /// AWS refused or failed, a resource is not the stack's, or what the stack needs
    /// does not exist; nothing more was changed.
    pub const AWS: u8 = 4;
    /// A local tool failed or is missing (the Docker engine, `pack`): nothing in AWS
    /// was changed.
    pub const LOCAL_TOOL: u8 = 5;
    /// A deployment did not finish within `--timeout`.
    pub const TIMEOUT: u8 = 6;
    /// Interrupted (Ctrl-C, SIGTERM): 128 + SIGINT, as shells report it.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A failed AWS call: which call, on which resource, and AWS's own code.
    #[error("{call} {resource}: {code}: {message}{}", denied_hint(code))]
    Aws {
        call: &'static str,
        resource: String,
        code: String,
        message: String,
    },
    /// AWS answered, but not as its API documents (a field missing).
    #[error("{call} answered {what}")]
    Unexpected { call: &'static str, what: String },
    /// A resource with this stack's name exists but is not this stack's.
    #[error("{kind} {name} exists but is not this stack's ({why}): bosun-deploy never changes what it does not own; rename the resource or remove it")]
    NotOwned {
        kind: &'static str,
        name: String,
        why: String,
    },
    /// What the stack needs and does not create is missing or wrong (subnets,
    /// secrets, the account): found before any change.
    #[error("{0}; nothing was changed")]
    Preflight(String),
    /// AWS is in a state the change has to wait out (a resource still being
    /// deleted), or refuses the change as the file asks it: said with what to do.
    #[error("{0}")]
    Refused(String),
    /// Another run holds the stack's lock.
    #[error("stack {stack} is locked: {holder}; nothing was changed (wait for it with --wait-lock SECS, or, if that run died, break the lock with --force-unlock {id})")]
    Locked {
        stack: String,
        holder: String,
        id: String,
    },
    /// A service's deployment failed and ECS rolled it back.
    #[error("deployment of {service} failed and was rolled back: {reasons}")]
    RolledBack { service: String, reasons: String },
    /// Ctrl-C or SIGTERM stopped a verb (its calls stopped, its lock released).
    #[error(
        "interrupted by {0}: what was done stays done, the lock is released; apply again to finish"
    )]
    Interrupted(&'static str),
    /// A wait ran out of time.
    #[error("{what} did not finish within {secs}s")]
    TimedOut { what: String, secs: u64 },
    /// A usage error (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The stack file names what is not there (an entry file): exit 3, as for an
    /// invalid file.
    #[error("{0}; nothing was changed")]
    Invalid(String),
    /// A local tool failed or is missing (the Docker engine, `pack`): an image could
    /// not be built, have bosun put in, or be pushed; nothing was changed in AWS.
    #[error("{0}; nothing was changed in AWS")]
    LocalTool(String),
    /// A spec that cannot become an API request (a value the SDK's builder refuses).
    #[error("{what}: {why}")]
    Request { what: String, why: String },
    /// A bug of bosun-deploy's own (a plan that breaks its own rules).
    #[error("internal error (a bug in bosun-deploy; please report it): {0}")]
    Internal(String),
}

impl DeployError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DeployError::Usage(_) => exit::USAGE,
            DeployError::Invalid(_) => exit::INVALID,
            DeployError::LocalTool(_) => exit::LOCAL_TOOL,
            DeployError::TimedOut { .. } => exit::TIMEOUT,
            DeployError::Interrupted(_) => exit::INTERRUPTED,
            DeployError::Aws { .. }
            | DeployError::Unexpected { .. }
            | DeployError::NotOwned { .. }
            | DeployError::Preflight(_)
            | DeployError::Refused(_)
            | DeployError::RolledBack { .. }
            | DeployError::Locked { .. }
            | DeployError::Request { .. }
            | DeployError::Internal(_) => exit::AWS,
        }
    }

    /// AWS's error code, when this is a failed call.
    pub fn code(&self) -> Option<&str> {
        match self {
            DeployError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A request the SDK's builder refused to build.
    pub fn request(
        what: impl Into<String>,
    ) -> impl FnOnce(aws_smithy_types::error::operation::BuildError) -> DeployError {
        let what = what.into();
        move |e| DeployError::Request {
            what,
            why: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, DeployError>;

/// AWS's error code of a failed call (`AccessDenied`, `Throttling`, ...), or a name
/// for a failure that never reached AWS.
pub fn code_of<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("UnknownError").to_owned(),
        SdkError::TimeoutError(_) => "Timeout".into(),
        SdkError::DispatchFailure(_) => "DispatchFailure".into(),
        SdkError::ResponseError(_) => "ResponseError".into(),
        SdkError::ConstructionFailure(_) => "ConstructionFailure".into(),
        _ => "UnknownError".into(),
    }
}

/// Turn a failed call into a [`DeployError::Aws`] naming the call and the resource.
pub fn failed<E, R>(
    call: &'static str,
    resource: impl Into<String>,
) -> impl FnOnce(SdkError<E, R>) -> DeployError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let resource = resource.into();
    move |e| {
        let code = code_of(&e);
        let message = match &e {
            SdkError::ServiceError(s) => s.err().message().unwrap_or("").to_owned(),
            other => crate::aws::describe(other),
        };
        DeployError::Aws {
            call,
            resource,
            code,
            message,
        }
    }
}

/// What to do about a refusal for want of permission: each service has its own code
/// for it (IAM User Guide, "Troubleshoot access denied error messages").
fn denied_hint(code: &str) -> &'static str {
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
        | "AuthorizationError" | "UnauthorizedAccess" => {
            " (the credentials may not make this call: `bosun-deploy policy` prints the IAM policy this stack's verbs need)"
        }
        _ => "",
    }
}

/// A read whose only "absent" answer is one of `not_found` (AWS's own not-found codes
/// for that call): `Ok(None)` then, the value when it succeeded, and an error for
/// anything else (a refused read is never "absent").
pub fn absent_on<T, E, R>(
    result: std::result::Result<T, SdkError<E, R>>,
    not_found: &[&str],
    call: &'static str,
    resource: &str,
) -> Result<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(SdkError::ServiceError(e))
            if e.err().code().is_some_and(|c| not_found.contains(&c)) =>
        {
            Ok(None)
        }
        Err(e) => Err(failed(call, resource)(e)),
    }
}
