//! The statuses of jobs, files and variants: closed sets, stored as lowercase text (so a row
//! reads the same in `psql`, `sqlite3` and the JSON answers), typed in Rust so a misspelt status
//! cannot be written or compared. A row holding a status this build does not know fails to
//! decode loudly instead of passing as some other state.

/// A status text no variant of the enum spells.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} status {text:?}")]
pub struct UnknownStatus {
    kind: &'static str,
    text: String,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident ($what:literal) { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every status, in their life's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and shown) text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The status `text` spells, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// How rows decode the column (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = UnknownStatus;
            fn try_from(text: String) -> Result<Self, UnknownStatus> {
                $name::parse(&text).ok_or(UnknownStatus { kind: $what, text })
            }
        }
    };
}

text_enum! {
    /// Where a job is in the queue.
    JobStatus ("job") {
        /// Waiting to be claimed (maybe backing off until its `run_after`).
        Pending = "pending",
        /// Held by one worker, which keeps its heartbeat fresh.
        Processing = "processing",
        Completed = "completed",
        /// Failed for good, with its reason in `error`.
        Failed = "failed",
    }
}

text_enum! {
    /// A file's state: an image is `processing` until every variant is settled.
    FileStatus ("file") {
        Processing = "processing",
        /// Stored, and every variant settled with at least one rendered (or none asked for).
        Ready = "ready",
        /// Every variant failed.
        Failed = "failed",
    }
}

text_enum! {
    /// A variant's state.
    VariantStatus ("variant") {
        /// Not rendered yet.
        Pending = "pending",
        Ready = "ready",
        /// Failed for good, with its reason in `error`.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_as_itself_and_strangers_are_refused() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::try_from(status.as_str().to_owned()).ok(), Some(*status));
        }
        for status in FileStatus::ALL {
            assert_eq!(FileStatus::parse(status.as_str()), Some(*status));
        }
        for status in VariantStatus::ALL {
            assert_eq!(VariantStatus::parse(&status.to_string()), Some(*status));
        }
        let err = VariantStatus::try_from("Ready".to_owned()).expect_err("case matters");
        assert_eq!(err.to_string(), "unknown variant status \"Ready\"");
        assert_eq!(JobStatus::parse("done"), None);
    }
}
