//! The bake part: the private artifact bucket and the AMI a builder instance makes from it.

use serde::Serialize;

use super::{BucketSpec, ImageSpec, network::Network};
use super::{Builder, Ref};
use crate::artifact::{Artifact, sha256_hex};

pub use crate::templates::Recipe;

/// What the bake installs: the app artifact (the recipe's templates are hashed in too).
#[derive(Debug, Clone, Serialize)]
pub struct BakeInput {
    pub artifact: Artifact,
}

impl BakeInput {
    /// The AMI's plan key: `ami-<10 hex>` of the artifact's and the recipe's hashes, so a new app
    /// bakes a new image and an unchanged one bakes nothing.
    pub fn image_key(&self, recipe: Recipe) -> String {
        let templates = crate::templates::install_templates_sha256(recipe);
        let both = sha256_hex(format!("{}:{templates}", self.artifact.sha256).as_bytes());
        format!("ami-{}", &both[..10])
    }
}

pub struct BakeOptions<'s> {
    pub recipe: Recipe,
    pub security_group: &'s str,
    pub instance_type: &'s str,
    pub volume_gb: u32,
}

/// The artifact bucket's plan key.
pub const BUCKET: &str = "artifacts";

/// Adds the bucket and the image; returns the image's key.
pub fn image(b: &mut Builder, input: &BakeInput, net: &Network, o: BakeOptions) -> Ref {
    let bucket = b.add(BUCKET, BucketSpec {});
    b.add(
        &input.image_key(o.recipe),
        ImageSpec {
            bucket,
            subnet: net.subnets[0].clone(),
            routes: net.routes.clone(),
            security_group: o.security_group.into(),
            instance_type: o.instance_type.into(),
            volume_gb: o.volume_gb,
            artifact: input.artifact.clone(),
            recipe: o.recipe,
            templates_sha256: crate::templates::install_templates_sha256(o.recipe),
        },
    )
}
