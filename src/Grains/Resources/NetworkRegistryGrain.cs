using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains.Resources;

internal sealed class NetworkRegistryGrain : Grain, INetworkRegistryGrain
{
    private readonly Dictionary<string, Claim> _claims = [];

    private sealed record Claim(uint Vni, IpPrefix[] Prefixes);

    protected override Task OnActivateAsync()
    {
        foreach (var stored in Store.List([Kinds.Network], null, null, int.MaxValue).Objects)
        {
            var spec = Network.Parser.ParseFrom(stored.Data).Spec;
            _claims[stored.Key] = new Claim(spec.Vni, Prefixes(spec.Ipv4Cidr, spec.Ipv6Cidr));
        }
        return Task.CompletedTask;
    }

    public Task ClaimAsync(string network, uint vni, string ipv4Cidr, string ipv6Cidr)
    {
        var claim = new Claim(vni, Prefixes(ipv4Cidr, ipv6Cidr));
        foreach (var (other, held) in _claims)
        {
            if (other == network)
            {
                continue;
            }
            if (held.Vni == vni)
            {
                throw new ControlPlaneException(ErrorCode.FailedPrecondition, $"VNI {vni} is already used by network '{other}'", "spec.vni");
            }
            foreach (var mine in claim.Prefixes)
            {
                foreach (var clash in held.Prefixes.Where(p => p.Overlaps(mine)))
                {
                    var field = mine.Family == System.Net.Sockets.AddressFamily.InterNetwork ? "spec.ipv4_cidr" : "spec.ipv6_cidr";
                    throw new ControlPlaneException(ErrorCode.FailedPrecondition, $"{mine} overlaps {clash} of network '{other}'", field);
                }
            }
        }
        _claims[network] = claim;
        return Task.CompletedTask;
    }

    public Task ReleaseAsync(string network)
    {
        _claims.Remove(network);
        return Task.CompletedTask;
    }

    private static IpPrefix[] Prefixes(string ipv4Cidr, string ipv6Cidr) => ipv6Cidr.Length == 0
        ? [IpPrefix.Parse("spec.ipv4_cidr", ipv4Cidr)]
        : [IpPrefix.Parse("spec.ipv4_cidr", ipv4Cidr), IpPrefix.Parse("spec.ipv6_cidr", ipv6Cidr)];
}
