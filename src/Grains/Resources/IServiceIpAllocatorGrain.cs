using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// Hands out service virtual IPs from the configured service CIDR(s). Derived from the stored
/// services on activation; an address becomes durable with the service's commit.
/// </summary>
public interface IServiceIpAllocatorGrain : IGrain
{
    /// <summary>One address per configured family, or RESOURCE_EXHAUSTED.</summary>
    Task<string[]> AllocateAsync();

    Task ReleaseAsync(IReadOnlyList<string> addresses);
}
