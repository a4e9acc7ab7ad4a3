using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;

namespace ControlPlane.Cni;

/// <summary>
/// What a network namespace holds, read over netlink from a thread inside it: its links, their
/// addresses and the main table's routes, both families alike.
/// </summary>
public sealed record NetnsState(IReadOnlyList<Link> Links, IReadOnlyList<LinkAddress> Addresses, IReadOnlyList<Route> Routes)
{
    /// <summary>Reads the namespace at <paramref name="path"/>; a missing one is error 3 (container unknown).</summary>
    public static NetnsState Read(string path)
    {
        using var netns = Enter(path);
        return netns.Invoke(() =>
        {
            using var rtnl = RouteNetlink.Open();
            return new NetnsState(rtnl.ListLinks(),
                [.. AddressFamilies.Both.SelectMany(rtnl.ListAddresses)],
                [.. AddressFamilies.Both.SelectMany(family => rtnl.ListRoutes(family))]);
        });
    }

    private static NetworkNamespace Enter(string path)
    {
        if (!File.Exists(path))
            throw new CniException(CniCodes.UnknownContainer, "the container's network namespace does not exist", $"CNI_NETNS: '{path}'");
        try
        {
            return NetworkNamespace.Enter(path);
        }
        catch (IOException e)
        {
            throw new CniException(CniCodes.UnknownContainer, "cannot enter the container's network namespace", $"CNI_NETNS '{path}': {e.Message}");
        }
    }

    /// <summary>Whether the namespace at <paramref name="path"/> has a link named <paramref name="name"/> (one request, no dump).</summary>
    public static bool HasLink(string path, string name)
    {
        using var netns = Enter(path);
        return netns.Invoke(() =>
        {
            using var rtnl = RouteNetlink.Open();
            return rtnl.FindLink(name) is not null;
        });
    }

    /// <summary>
    /// Whether the link <paramref name="name"/> in the namespace at <paramref name="path"/> is the
    /// far end of the veth <paramref name="hostInterface"/> of the calling namespace (the node's).
    /// </summary>
    public static bool IsEndpointsInterface(string path, string name, string hostInterface)
    {
        using var rtnl = RouteNetlink.Open();
        return rtnl.FindLink(hostInterface) is { } host && VethPair.Joins(rtnl, host, path, name);
    }

    public Link? Find(string name) => Links.FirstOrDefault(l => l.Name == name);
}
