using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Netns;

/// <summary>Which interface of another namespace a veth of this one is joined to.</summary>
public static class VethPair
{
    /// <summary>
    /// Whether <paramref name="host"/>, a link of <paramref name="rtnl"/>'s namespace, is joined to
    /// the link named <paramref name="interfaceName"/> in the namespace at
    /// <paramref name="netnsPath"/>: its far end is in that namespace and is that link. Interface
    /// indexes repeat from one namespace to the next, so the namespace is compared by its id, not
    /// taken from the index alone.
    /// </summary>
    public static bool Joins(RouteNetlink rtnl, Link host, string netnsPath, string interfaceName)
    {
        if (host.PeerNamespace is not { } peerNamespace || host.PeerIndex == 0) return false;
        using (var netns = File.OpenHandle(netnsPath))
        {
            if (rtnl.NamespaceId(netns) != peerNamespace) return false;
        }
        return Find(netnsPath, interfaceName)?.Index == host.PeerIndex;
    }

    /// <summary>The link named <paramref name="name"/> in the namespace at <paramref name="netnsPath"/>, or null.</summary>
    public static Link? Find(string netnsPath, string name)
    {
        using var inside = NetworkNamespace.Enter(netnsPath);
        return inside.Invoke(() =>
        {
            using var rtnl = RouteNetlink.Open();
            return rtnl.FindLink(name);
        });
    }
}
