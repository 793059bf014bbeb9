"""The local AWS simulator: moto, made to behave like AWS in time.

moto answers every call at once and every resource is ready at once. The :class:`Simulator`
wraps moto's *models* (not its HTTP responses) so that resources have lifecycles that advance
with a :class:`~immutable_deploy.localaws.clock.VirtualClock`, and injects the faults of a
:class:`~immutable_deploy.localaws.faults.Scenario`:

=========================  ======================================================================
EC2 RunInstances           ``pending`` for ``Pace.instance_pending``, then ``running``
DescribeInstanceStatus     InstanceStatus/SystemStatus ``initializing`` for
                           ``Pace.status_checks_initializing`` after ``running``, then ``ok``
EC2 CreateImage            ``pending`` for ``Pace.image_pending``, then ``available`` (or ``failed``);
                           snapshot TagSpecifications are applied (moto raises NotImplementedError)
SSM SendCommand            each invocation ``InProgress`` for ``Pace.command_in_progress``, then
                           ``Success`` (or ``Failed``); the command's status follows
Auto Scaling instances     ``Pending`` for ``Pace.group_instance_pending`` (at least until the
                           instance runs), then ``InService``; only then registered with the
                           group's load balancers and target groups
classic ELB health         a registered instance is ``OutOfService`` until it passed
                           ``healthy_threshold`` checks ``health_check_interval`` apart after it
                           was InService in its group (or registered, if later), then ``InService``
ELBv2 target health        ``initial`` then ``healthy`` likewise; after deregistration (or the
                           instance's termination) ``draining`` for the deregistration delay, then
                           gone
DeleteAutoScalingGroup     the group stays visible with Status ``Delete in progress`` for
                           ``Pace.group_delete``; its instances are deregistered and terminated at
                           once. Without ForceDelete a group with instances is refused
                           (``ResourceInUse``), as on AWS
=========================  ======================================================================

Lifecycles advance whenever the clock advances (the simulator listens to it) and, lazily, before
moto answers any request, so a real-time clock works without a background thread. Requests to the
simulated services (EC2, Auto Scaling, ELB, ELBv2, SSM) are serialised with the simulator's lock,
so lifecycle changes never interleave with a moto call. Transitions happen at their due simulated
time, in due-time order, and every one is appended to :attr:`Simulator.timeline`.

Use inside an active ``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``
(or a moto server in the same process). The patches are tied to moto 5.2.5.

One module per AWS service, over a shared scheduler (:mod:`.scheduler`: the agenda, the timeline,
the patches, :class:`Pace`), put together by :mod:`.simulator`:

=========================  ======================================================================
:mod:`.ec2`                instances, status checks, capacity refusals, spot interruptions
:mod:`.images`             images
:mod:`.ssm`                command invocations
:mod:`.autoscaling`        a group's instances (Pending, InService, registered), group deletion
:mod:`.scaling`            what a group does by itself: suspended processes, ELB health checks and
                           ReplaceUnhealthy, Availability Zones and AZRebalance
:mod:`.scaling_policies`   scaling policies (alarm actions, ExecutePolicy), scheduled actions
:mod:`.health`             load balancer health checks, classic and v2
:mod:`.elb`                classic ELB instance health, connection draining
:mod:`.elbv2`              target health, deregistration delay
:mod:`.cloudwatch`         metric alarms evaluated every minute, and the metrics they read
:mod:`.stepfunctions`      Wait states, Retry backoff and timestamps in simulated time
:mod:`.visibility`         eventual consistency of describes (``Scenario.eventual_consistency_seconds``)
=========================  ======================================================================
"""

from immutable_deploy.localaws.sim.autoscaling import DELETE_IN_PROGRESS
from immutable_deploy.localaws.sim.scheduler import Pace, TimelineEvent
from immutable_deploy.localaws.sim.simulator import SIMULATED_SERVICES, Simulator

__all__ = ["DELETE_IN_PROGRESS", "SIMULATED_SERVICES", "Pace", "Simulator", "TimelineEvent"]
