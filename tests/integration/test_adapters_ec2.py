"""adapters.ec2 on moto: the staging instance and the image come back as the models of
immutable_deploy.domain.models.aws, parsed from AWS's answers."""

from __future__ import annotations

from immutable_deploy.domain.adapters import ec2
from immutable_deploy.domain.models.aws import Image, Instance, StatusChecks


def test_an_instance_and_its_image_are_described_as_models(world):
    launched = ec2.run_instance(
        {
            "ImageId": world.ami,
            "InstanceType": "t3.small",
            "SubnetId": world.subnets[0],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "staging"}]}],
        }
    )
    assert isinstance(launched, Instance)
    assert (launched.instance_type, launched.subnet_id, launched.market, launched.spot_request_id) == (
        "t3.small",
        world.subnets[0],
        "on-demand",
        None,
    )
    assert launched.private_ip and launched.launch_time and launched.tags == {"role": "staging"}
    described = ec2.describe_instance(launched.instance_id)
    assert described == ec2.find_instances({"role": "staging"})[0]
    assert described.state == "running" and described.state_reason == ""
    assert isinstance(ec2.status_checks(launched.instance_id), StatusChecks)
    assert ec2.describe_instance("i-0000000000000dead") is None

    image_id = ec2.create_image(launched.instance_id, "shop-image", "shop", {"role": "image"})
    image = ec2.describe_image(image_id)
    assert isinstance(image, Image) and image == ec2.find_images(name="shop-image")[0]
    assert (image.image_id, image.name, image.state, image.tags) == (
        image_id,
        "shop-image",
        "available",
        {"role": "image"},
    )
    assert isinstance(image.snapshot_ids, tuple) and len(image.snapshot_ids) == 1
    assert ec2.describe_image("ami-0000000000000dead") is None
