using System.Collections;

namespace ControlPlane.Cni;

/// <summary>
/// The CNI_* variables of one call, checked as far as the command needs them (the spec's
/// "required environment parameters" per command). A missing or malformed one is error 4,
/// naming the variable.
/// </summary>
public sealed record CniInvocation(string Command, string ContainerId, string Netns, string InterfaceName, CniArgs Args, string Path)
{
    public static CniInvocation FromEnvironment(IDictionary environment)
    {
        string Get(string name) => environment[name] as string ?? "";
        var command = Get("CNI_COMMAND");
        if (command.Length == 0)
            throw new CniException(CniCodes.InvalidEnvironment, "CNI_COMMAND is not set", "CNI_COMMAND must be ADD, DEL, CHECK, GC, STATUS or VERSION");
        var invocation = new CniInvocation(command, Get("CNI_CONTAINERID"), Get("CNI_NETNS"), Get("CNI_IFNAME"), CniArgs.Empty, Get("CNI_PATH"));
        if (command is "ADD" or "DEL" or "CHECK")
        {
            invocation = invocation with { Args = CniArgs.Parse(Get("CNI_ARGS")) };
            var invalid = new List<string>();
            if (!IsContainerId(invocation.ContainerId)) invalid.Add($"CNI_CONTAINERID '{invocation.ContainerId}' (alphanumeric first, then alphanumerics, '_', '.' or '-')");
            if (!IsInterfaceName(invocation.InterfaceName)) invalid.Add($"CNI_IFNAME '{invocation.InterfaceName}' (1–15 characters, not '.' or '..', no '/', ':' or whitespace)");
            if (command != "DEL" && invocation.Netns.Length == 0) invalid.Add("CNI_NETNS (not set)");
            if (invalid.Count > 0)
                throw new CniException(CniCodes.InvalidEnvironment, "invalid CNI environment variables", string.Join("; ", invalid));
        }
        return invocation;
    }

    private static bool IsContainerId(string id) =>
        id.Length > 0 && char.IsAsciiLetterOrDigit(id[0]) && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    private static bool IsInterfaceName(string name) =>
        name.Length is > 0 and <= 15 && name is not ("." or "..") && !name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c));
}
