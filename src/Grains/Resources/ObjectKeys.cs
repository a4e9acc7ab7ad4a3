namespace ControlPlane.Grains.Resources;

/// <summary>Grain keys of API objects: "name", or "namespace/name" for namespaced kinds.</summary>
public static class ObjectKeys
{
    public static string Of(string ns, string name) => ns.Length == 0 ? name : ns + "/" + name;

    public static (string Namespace, string Name) Split(string key)
    {
        var slash = key.IndexOf('/');
        return slash < 0 ? (string.Empty, key) : (key[..slash], key[(slash + 1)..]);
    }
}
