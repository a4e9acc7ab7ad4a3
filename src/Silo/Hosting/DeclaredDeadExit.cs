using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Orleans' handler of fatal errors, replaced so that a silo the cluster declared dead ends as
/// <see cref="MembershipGuard"/> ends it, with <see cref="MembershipGuard.DeclaredDeadExitCode"/>,
/// whichever of the two notices first: Orleans' own membership refresh often does, after a pause,
/// and its handler aborts the process (exit 134, a core dump) where supervisors are told to expect
/// 75 and restart the silo as a new member. Which case it is comes from the membership view (this
/// silo's status there), not from the error's text. Any other fatal error ends the process as
/// Orleans' handler does: logged, then failed fast.
/// </summary>
public sealed class DeclaredDeadExit(IServiceProvider services, ILocalSiloDetails self, ILogger<DeclaredDeadExit> log) : IFatalErrorHandler
{
    private const string MembershipTableManager = "Orleans.Runtime.MembershipService.MembershipTableManager";

    public bool IsUnexpected(Exception exception) => true;

    public void OnFatalException(object? sender = null, string? context = null, Exception? exception = null)
    {
        // The membership service ends the silo only when the table counts it dead (or it cannot
        // record itself alive there): either way it must come back as a new member.
        var status = services.GetService<IClusterMembershipService>()?.CurrentSnapshot.GetSiloStatus(self.SiloAddress);
        if (status is SiloStatus.Dead || sender?.GetType().FullName == MembershipTableManager)
        {
            ProcessEnd.Now(log, $"the cluster declared this silo dead ({context}); its grains live on other silos now. Stopping (exit code {MembershipGuard.DeclaredDeadExitCode}); restart it to rejoin as a new silo", MembershipGuard.DeclaredDeadExitCode);
            return;
        }
        log.LogCritical(exception, "Fatal error from {Sender} ({Context}): ending the process", sender, context);
        Environment.FailFast($"fatal error from {sender}: {context}", exception);
    }
}
