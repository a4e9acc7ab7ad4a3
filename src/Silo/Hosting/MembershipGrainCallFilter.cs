namespace ControlPlane.Silo.Hosting;

/// <summary>
/// The <see cref="MembershipGuard"/> for grain calls (several-silo clusters only). A call queued
/// on a silo while it was paused would otherwise run the moment it resumes, on an activation the
/// cluster has replaced meanwhile. The store refuses that activation's updates and deletes (the
/// etag is the revision), but not a create: after the new activation created the object and
/// deleted it again, the stale create's "must not exist" holds, and it would bring the object
/// back long after its caller was told the call failed. So our grains' calls wait, as API calls
/// do, until the silo has confirmed it is still a member; a silo declared dead stops first.
/// </summary>
internal sealed class MembershipGrainCallFilter(MembershipGuard guard) : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (guard.Reason is not null && IsOurs(context))
        {
            await guard.EnterAsync(CancellationToken.None).ConfigureAwait(false);
        }
        await context.Invoke().ConfigureAwait(false);
    }

    // Orleans' own system targets answer through interfaces of its namespaces.
    private static bool IsOurs(IIncomingGrainCallContext context) =>
        context.InterfaceMethod?.DeclaringType?.Namespace?.StartsWith("ControlPlane.", StringComparison.Ordinal) == true;
}
