//! One hardened launch for every machine bookstore starts — the bake's builder, the launch
//! template's instances and the VMs: IMDSv2 required with a hop limit of 1 (a container on the
//! machine cannot reach the instance's credentials), an encrypted gp3 (or the stack's type) root
//! volume deleted with the instance, the instance profile when the machine needs one, no key pair;
//! and the user data as AWS takes it: gzip-compressed (cloud-init reads it so) and at most
//! 16,384 bytes before base64.

use std::io::{Read, Write};

use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    VolumeType,
};

use super::AwsError;

/// AWS refuses user data over 16 KB, counted before base64.
pub const USER_DATA_MAX: usize = 16_384;
/// The root device of Amazon Linux 2023.
pub const ROOT_DEVICE: &str = "/dev/xvda";
/// One hop: the instance itself reaches IMDS, a container behind a bridge does not.
pub const HOP_LIMIT: i32 = 1;

/// The launch settings every machine shares; only the root size and type and the profile differ.
pub struct Hardened<'a> {
    pub root_gb: u32,
    pub volume_type: &'a str,
    /// `None`: the machine calls no AWS API (the builder fetches its input by a presigned URL).
    pub instance_profile: Option<&'a str>,
}

impl Hardened<'_> {
    pub fn metadata_options(&self) -> InstanceMetadataOptionsRequest {
        InstanceMetadataOptionsRequest::builder()
            .http_tokens(HttpTokensState::Required)
            .http_put_response_hop_limit(HOP_LIMIT)
            .http_endpoint(InstanceMetadataEndpointState::Enabled)
            .build()
    }

    pub fn root_device(&self) -> BlockDeviceMapping {
        BlockDeviceMapping::builder()
            .device_name(ROOT_DEVICE)
            .ebs(
                EbsBlockDevice::builder()
                    .volume_size(self.root_gb as i32)
                    .volume_type(VolumeType::from(self.volume_type))
                    .encrypted(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .build()
    }

    pub fn instance_profile(&self) -> Option<IamInstanceProfileSpecification> {
        self.instance_profile.map(|name| {
            IamInstanceProfileSpecification::builder()
                .name(name)
                .build()
        })
    }

    // The launch template's twins of the three above: the SDK has separate types for a launch
    // template's data, with the same fields; the values come from the same place.
    pub fn template_metadata_options(&self) -> LaunchTemplateInstanceMetadataOptionsRequest {
        LaunchTemplateInstanceMetadataOptionsRequest::builder()
            .http_tokens(LaunchTemplateHttpTokensState::Required)
            .http_put_response_hop_limit(HOP_LIMIT)
            .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
            .build()
    }

    pub fn template_root_device(&self) -> LaunchTemplateBlockDeviceMappingRequest {
        LaunchTemplateBlockDeviceMappingRequest::builder()
            .device_name(ROOT_DEVICE)
            .ebs(
                LaunchTemplateEbsBlockDeviceRequest::builder()
                    .volume_size(self.root_gb as i32)
                    .volume_type(VolumeType::from(self.volume_type))
                    .encrypted(true)
                    .delete_on_termination(true)
                    .build(),
            )
            .build()
    }

    pub fn template_instance_profile(
        &self,
    ) -> Option<LaunchTemplateIamInstanceProfileSpecificationRequest> {
        self.instance_profile.map(|name| {
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(name)
                .build()
        })
    }
}

/// The script gzip-compressed, as sent (before base64). Deterministic: no time or name in the
/// header, so the same script always gives the same bytes.
pub fn compress(script: &str) -> Vec<u8> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(script.as_bytes())
        .expect("gzip into memory cannot fail");
    gz.finish().expect("gzip into memory cannot fail")
}

/// The user data for RunInstances or a launch template: base64 of the gzip-compressed script,
/// refused here, before any call, when AWS would refuse it.
pub fn user_data(what: &str, script: &str) -> Result<String, AwsError> {
    let bytes = compress(script);
    if bytes.len() > USER_DATA_MAX {
        return Err(AwsError::other(format!(
            "the user data of {what} is {} bytes compressed ({} as text); AWS takes at most {USER_DATA_MAX}: shorten the stack's names or settings",
            bytes.len(),
            script.len()
        )));
    }
    Ok(aws_smithy_types::base64::encode(&bytes))
}

/// The script back from user data as AWS returns it (base64; gzip-compressed or plain).
pub fn user_data_text(base64: &str) -> Option<String> {
    let bytes = aws_smithy_types::base64::decode(base64).ok()?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    } else {
        String::from_utf8(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips_compressed_and_deterministic() {
        let script = "#!/bin/bash\necho hello\n".repeat(2000);
        let a = user_data("x", &script).unwrap();
        assert_eq!(a, user_data("x", &script).unwrap());
        assert!(aws_smithy_types::base64::decode(&a).unwrap().len() < script.len() / 10);
        assert_eq!(user_data_text(&a).as_deref(), Some(script.as_str()));
        let plain = aws_smithy_types::base64::encode(b"#!/bin/sh\n");
        assert_eq!(user_data_text(&plain).as_deref(), Some("#!/bin/sh\n"));
    }

    #[test]
    fn user_data_over_the_limit_is_refused_before_any_call() {
        // Random text does not compress: 40 KB of it stays far above 16 KB.
        let mut rng = fastrand::Rng::with_seed(7);
        let script: String = (0..40_000).map(|_| rng.alphanumeric()).collect();
        let err = user_data("the builder", &script).unwrap_err().to_string();
        assert!(err.contains("16384"), "{err}");
        assert!(err.contains("the builder"), "{err}");
    }
}
