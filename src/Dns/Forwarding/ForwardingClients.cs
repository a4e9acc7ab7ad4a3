using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Dns.Handling;

namespace ControlPlane.Dns.Forwarding;

/// <summary>
/// Which clients may have names outside our zones resolved for them ("Dns:Forwarding:AllowedClients"):
/// CIDRs and the keywords <c>localhost</c> (127.0.0.0/8, ::1), <c>localnets</c> (the networks of
/// this host's interfaces when the server started) and <c>networks</c> (the control plane's
/// network ranges, followed from the Watch feed). Others get REFUSED, as if no forwarder were
/// configured: the server is not an open resolver. The check is a loop over masked 128-bit
/// compares on an immutable array swapped when the networks change; nothing is allocated.
/// </summary>
public sealed class ForwardingClients
{
    public static readonly IReadOnlyList<string> Default = ["localhost", "localnets", "networks"];

    private readonly (UInt128 Network, UInt128 Mask)[] _fixed;
    private (UInt128 Network, UInt128 Mask)[] _all;

    private ForwardingClients((UInt128, UInt128)[] fixedRanges, bool followsNetworks)
    {
        _fixed = fixedRanges;
        _all = fixedRanges;
        FollowsNetworks = followsNetworks;
    }

    /// <summary>Whether the list includes <c>networks</c>.</summary>
    public bool FollowsNetworks { get; }

    /// <summary>Parses the configured list; every entry that is neither a keyword nor a CIDR is an error.</summary>
    public static ForwardingClients Parse(IEnumerable<string> entries, List<string> errors)
    {
        var ranges = new List<(UInt128, UInt128)>();
        var networks = false;
        foreach (var entry in entries.Select(e => e.Trim()))
        {
            switch (entry.ToLowerInvariant())
            {
                case "localhost":
                    ranges.Add(Range(IPAddress.Loopback, 8));
                    ranges.Add(Range(IPAddress.IPv6Loopback, 128));
                    break;
                case "localnets":
                    ranges.AddRange(LocalNetworks());
                    break;
                case "networks":
                    networks = true;
                    break;
                default:
                    if (TryParseRange(entry, out var range)) ranges.Add(range);
                    else errors.Add($"Dns:Forwarding:AllowedClients: '{entry}' is neither a CIDR nor localhost, localnets or networks");
                    break;
            }
        }
        return new ForwardingClients([.. ranges], networks);
    }

    /// <summary>Replaces the control plane's network ranges (ignored unless the list has <c>networks</c>).</summary>
    public void SetNetworks(IEnumerable<string> cidrs)
    {
        if (!FollowsNetworks) return;
        var learned = cidrs.Select(c => TryParseRange(c, out var r) ? r : ((UInt128, UInt128)?)null).OfType<(UInt128, UInt128)>();
        Volatile.Write(ref _all, [.. _fixed, .. learned]);
    }

    public bool Allows(ClientAddress client)
    {
        foreach (var (network, mask) in Volatile.Read(ref _all))
        {
            if ((client.Value & mask) == network) return true;
        }
        return false;
    }

    private static bool TryParseRange(string text, out (UInt128 Network, UInt128 Mask) range)
    {
        range = default;
        if (!IPNetwork.TryParse(text, out var network)) return false;
        range = Range(network.BaseAddress, network.PrefixLength);
        return true;
    }

    private static (UInt128, UInt128) Range(IPAddress address, int prefixLength)
    {
        var client = ClientAddress.From(address);
        var mask = ClientAddress.Mask(prefixLength, client.IsIPv4);
        return (client.Value & mask, mask);
    }

    private static IEnumerable<(UInt128, UInt128)> LocalNetworks()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces().Where(n => n.OperationalStatus != OperationalStatus.Down))
        {
            foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
            {
                yield return Range(unicast.Address, unicast.PrefixLength);
            }
        }
    }
}
