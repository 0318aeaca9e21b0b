//! The answer of `artifacts_get` and `artifacts_tail`: a range of one artifact.

use schemars::JsonSchema;
use serde::Serialize;

use warden_core::artifacts::{ArtifactRange, StreamName};
use warden_core::tool::{StreamEncoding, encode_bytes};

#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactSlice {
    pub job_id: String,
    pub host_id: String,
    pub stream: StreamName,
    /// Where data starts in the artifact (bytes).
    pub offset: u64,
    /// Bytes in data.
    pub length: u64,
    /// The artifact's size: the bytes kept, secrets masked.
    pub size: u64,
    /// The bytes: text, or base64 when they are not text (data_encoding says so).
    pub data: String,
    /// Set when data is base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_encoding: Option<StreamEncoding>,
    /// More follows: the offset of the next range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    /// The command printed more than the artifact keeps (its first 16 MiB); the
    /// stream's last bytes are the tail of the exec answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

impl ArtifactSlice {
    pub fn new(range: ArtifactRange) -> ArtifactSlice {
        let (data, data_encoding) = encode_bytes(&range.data);
        let length = range.data.len() as u64;
        let end = range.offset + length;
        ArtifactSlice {
            next_offset: (end < range.info.bytes).then_some(end),
            incomplete: !range.info.complete,
            job_id: range.info.job_id,
            host_id: range.info.host_id,
            stream: range.info.stream,
            offset: range.offset,
            length,
            size: range.info.bytes,
            data,
            data_encoding,
        }
    }
}
