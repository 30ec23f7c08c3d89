//! What bosun-deploy knows of EC2 instance types without asking AWS (so `validate` and
//! `render` stay offline): the architecture of a type from its family's name, and the
//! vCPUs and memory of the common families' sizes, with what of that memory a task can
//! have on the ECS-optimized AMI. A type it does not know is not guessed at: sizing a
//! task to fill it needs `resources.cpu` and `resources.memory` then.

/// Memory the ECS agent keeps for the OS and itself (`ECS_RESERVED_MEMORY` in the
/// instances' user data), MiB.
pub const ECS_RESERVED_MEMORY: i64 = 256;

/// A type's vCPUs and memory (MiB), as EC2 lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub vcpus: i64,
    pub memory_mib: i64,
}

impl Shape {
    /// The memory a task can be given on one instance: the nominal memory, less what
    /// the kernel keeps (a sixteenth, at least 128 MiB: the instance's MemTotal is
    /// below its nominal size by about that much) and less [`ECS_RESERVED_MEMORY`].
    pub fn task_memory(&self) -> i64 {
        self.memory_mib - (self.memory_mib / 16).max(128) - ECS_RESERVED_MEMORY
    }

    /// The CPU units of the whole instance (1024 per vCPU).
    pub fn cpu_units(&self) -> i64 {
        self.vcpus * 1024
    }
}

/// `m6g.large` → (`m6g`, `large`).
fn split(t: &str) -> Option<(&str, &str)> {
    let (family, size) = t.split_once('.')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    (ok(family) && ok(size) && family.starts_with(|c: char| c.is_ascii_lowercase()))
        .then_some((family, size))
}

/// Whether `t` is written as an instance type (`family.size`, lower case).
pub fn well_formed(t: &str) -> bool {
    split(t).is_some()
}

/// The CPU architecture of an instance type: `arm64` for the Graviton families (a
/// `g` right after the generation: `m6g`, `c7gd`, `t4g`, `r8g`; and `a1`), else
/// `x86_64`.
pub fn architecture(t: &str) -> &'static str {
    let Some((family, _)) = split(t) else {
        return "x86_64";
    };
    if family == "a1" {
        return "arm64";
    }
    let after_digits = family
        .trim_start_matches(|c: char| c.is_ascii_lowercase())
        .trim_start_matches(|c: char| c.is_ascii_digit());
    if after_digits.starts_with('g') {
        "arm64"
    } else {
        "x86_64"
    }
}

/// The families whose sizes follow the rule below, with their memory per vCPU (GiB).
const FAMILIES: &[(&str, i64)] = &[
    ("m5", 4),
    ("m5a", 4),
    ("m5d", 4),
    ("m6i", 4),
    ("m6a", 4),
    ("m6g", 4),
    ("m6gd", 4),
    ("m7i", 4),
    ("m7a", 4),
    ("m7g", 4),
    ("m7gd", 4),
    ("m8g", 4),
    ("c5", 2),
    ("c5a", 2),
    ("c5d", 2),
    ("c6i", 2),
    ("c6a", 2),
    ("c6g", 2),
    ("c6gd", 2),
    ("c7i", 2),
    ("c7a", 2),
    ("c7g", 2),
    ("c7gd", 2),
    ("c8g", 2),
    ("r5", 8),
    ("r5a", 8),
    ("r5d", 8),
    ("r6i", 8),
    ("r6a", 8),
    ("r6g", 8),
    ("r6gd", 8),
    ("r7i", 8),
    ("r7a", 8),
    ("r7g", 8),
    ("r7gd", 8),
    ("r8g", 8),
];

/// The burstable families' sizes: (size, vCPUs, memory MiB).
const BURSTABLE: &[(&str, i64, i64)] = &[
    ("nano", 2, 512),
    ("micro", 2, 1024),
    ("small", 2, 2048),
    ("medium", 2, 4096),
    ("large", 2, 8192),
    ("xlarge", 4, 16384),
    ("2xlarge", 8, 32768),
];

/// The vCPUs and memory of a type bosun-deploy knows, else `None`.
pub fn shape(t: &str) -> Option<Shape> {
    let (family, size) = split(t)?;
    if matches!(family, "t3" | "t3a" | "t4g") {
        return BURSTABLE
            .iter()
            .find(|(s, _, _)| *s == size)
            .map(|(_, vcpus, memory_mib)| Shape {
                vcpus: *vcpus,
                memory_mib: *memory_mib,
            });
    }
    let per_vcpu = FAMILIES.iter().find(|(f, _)| *f == family)?.1;
    let vcpus = match size {
        // Only the Graviton families and the 7th-generation AMD ones have a medium.
        "medium" if architecture(t) == "arm64" || family.ends_with("7a") => 1,
        "medium" => return None,
        "large" => 2,
        "xlarge" => 4,
        other => {
            let n: i64 = other.strip_suffix("xlarge")?.parse().ok()?;
            // c5 and c5d go 4xlarge, 9xlarge, 12xlarge, 18xlarge.
            let missing = matches!(family, "c5" | "c5d") && (n == 8 || n == 16);
            if ![2, 4, 8, 12, 16].contains(&n) || missing {
                return None;
            }
            n * 4
        }
    };
    Some(Shape {
        vcpus,
        memory_mib: vcpus * per_vcpu * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_come_from_the_family() {
        for t in [
            "m6g.large",
            "c7gd.xlarge",
            "t4g.small",
            "r8g.2xlarge",
            "a1.large",
        ] {
            assert_eq!(architecture(t), "arm64", "{t}");
        }
        for t in [
            "m5.large",
            "t3.micro",
            "c6i.xlarge",
            "m7i-flex.large",
            "g5.xlarge",
        ] {
            assert_eq!(architecture(t), "x86_64", "{t}");
        }
    }

    #[test]
    fn known_sizes_and_what_a_task_gets() {
        let t3m = shape("t3.medium").unwrap();
        assert_eq!((t3m.vcpus, t3m.memory_mib), (2, 4096));
        assert_eq!(t3m.task_memory(), 4096 - 256 - 256);
        assert_eq!(t3m.cpu_units(), 2048);
        let nano = shape("t3.nano").unwrap();
        assert_eq!(nano.task_memory(), 512 - 128 - 256);
        assert_eq!(
            shape("m6g.medium"),
            Some(Shape {
                vcpus: 1,
                memory_mib: 4096
            })
        );
        assert_eq!(
            shape("r6i.4xlarge"),
            Some(Shape {
                vcpus: 16,
                memory_mib: 131072
            })
        );
        assert_eq!(shape("c5.large").unwrap().memory_mib, 4096);
        // Not guessed: a size the family does not have, an unknown family, a typo.
        assert_eq!(shape("m5.medium"), None);
        assert_eq!(shape("m5.3xlarge"), None);
        assert_eq!(shape("c5.8xlarge"), None);
        assert_eq!(shape("c7a.medium").unwrap().vcpus, 1);
        assert_eq!(shape("x2idn.large"), None);
        assert_eq!(shape("t3medium"), None);
        assert!(!well_formed("T3.medium"));
        assert!(well_formed("m7i-flex.large"));
    }
}
