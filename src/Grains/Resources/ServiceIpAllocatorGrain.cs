using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains.Resources;

internal sealed class ServiceIpAllocatorGrain(ControlPlaneOptions options) : Grain, IServiceIpAllocatorGrain
{
    private const string Owner = "services";
    private readonly List<BlockPool> _pools = [];

    protected override Task OnActivateAsync()
    {
        foreach (var (cidr, setting) in new[] { (options.ServiceIpv4Cidr, nameof(options.ServiceIpv4Cidr)), (options.ServiceIpv6Cidr, nameof(options.ServiceIpv6Cidr)) })
        {
            if (cidr.Length == 0)
            {
                continue;
            }
            var prefix = IpPrefix.Parse(setting, cidr);
            // One block spanning the whole range: the allocator is a single bitmap.
            var pool = new BlockPool(prefix, prefix.Length);
            pool.AssignBlock(prefix, Owner);
            _pools.Add(pool);
        }
        foreach (var stored in Store.List([Kinds.Service], null, null, int.MaxValue).Objects)
        {
            foreach (var ip in Service.Parser.ParseFrom(stored.Data).Status?.ClusterIps ?? [])
            {
                var address = IPAddress.Parse(ip);
                _pools.FirstOrDefault(p => p.MarkHeld(address));
            }
        }
        return Task.CompletedTask;
    }

    public Task<string[]> AllocateAsync()
    {
        var taken = new List<IPAddress>();
        foreach (var pool in _pools)
        {
            if (pool.TryAllocate(Owner) is not { } address)
            {
                taken.ForEach(a => _pools.ForEach(p => p.Release(a)));
                throw new ControlPlaneException(ErrorCode.ResourceExhausted, "the service IP range is exhausted", "status.cluster_ips");
            }
            taken.Add(address);
        }
        return Task.FromResult(taken.Select(a => a.ToString()).ToArray());
    }

    public Task ReleaseAsync(IReadOnlyList<string> addresses)
    {
        foreach (var ip in addresses)
        {
            var address = IPAddress.Parse(ip);
            _pools.ForEach(p => p.Release(address));
        }
        return Task.CompletedTask;
    }
}
