using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Cni;
using ControlPlane.Cni.Commands;

// A CNI plugin (spec 1.1.0): the runtime runs it with CNI_COMMAND and the other CNI_* variables
// set and the plugin configuration on stdin. The result (ADD, VERSION) or the error object goes
// to stdout; the exit code is 0 or 1. Nothing else is printed: no stack trace, ever.
// A person running it by hand (no CNI_COMMAND) gets the usage or the version, exit 0.
if (Environment.GetEnvironmentVariable("CNI_COMMAND") is null or "" && args.Any(a => a is "--help" or "-h" or "-?" or "--version" or "-V"))
{
    Console.Out.WriteLine($"controlplane {ControlPlane.Contracts.Hosting.ProgramInfo.Version} (CNI {string.Join(", ", CniVersions.Supported)})");
    if (!args.Any(a => a is "--version" or "-V"))
    {
        Console.Out.WriteLine("""

            The control plane's CNI plugin. Container runtimes run it with CNI_COMMAND (ADD, DEL,
            CHECK, GC, STATUS or VERSION), the other CNI_* variables and the network configuration
            on stdin (its keys: network, agentSocket, dns, ...); it attaches the container through
            the node agent's unix socket and prints the CNI result or error object on stdout.
            """);
    }
    return 0;
}
var stdout = Console.OpenStandardOutput();
var version = CniVersions.Latest;
try
{
    var input = ReadAll(Console.OpenStandardInput());
    var invocation = CniInvocation.FromEnvironment(Environment.GetEnvironmentVariables());
    if (invocation.Command == "VERSION")
    {
        Write(stdout, VersionResult(input));
        return 0;
    }
    var config = PluginConfig.Parse(input);
    version = CniVersions.IsSupported(config.CniVersion) ? config.CniVersion : CniVersions.Latest;
    switch (invocation.Command)
    {
        case "ADD":
            Write(stdout, await AddCommand.RunAsync(invocation, config));
            break;
        case "DEL":
            await DelCommand.RunAsync(invocation, config);
            break;
        case "CHECK":
            await CheckCommand.RunAsync(invocation, config);
            break;
        case "GC":
            await GcCommand.RunAsync(config);
            break;
        case "STATUS":
            await StatusCommand.RunAsync(config);
            break;
        default:
            throw new CniException(CniCodes.InvalidEnvironment, $"unknown CNI_COMMAND '{invocation.Command}'", "CNI_COMMAND must be ADD, DEL, CHECK, GC, STATUS or VERSION");
    }
    return 0;
}
catch (CniException e)
{
    Write(stdout, Error(version, e.Code, e.Message, e.Details));
    return 1;
}
#pragma warning disable CA1031 // The runtime must get an error object whatever went wrong.
catch (Exception e)
#pragma warning restore CA1031
{
    Write(stdout, Error(version, CniCodes.Internal, "internal error", $"{e.GetType().Name}: {e.Message}"));
    return 1;
}

static byte[] ReadAll(Stream stream)
{
    try
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }
    catch (IOException e)
    {
        throw new CniException(CniCodes.IoFailure, "cannot read the configuration from stdin", e.Message);
    }
}

// VERSION answers whatever the input: a runtime probing an unknown plugin may send little.
static JsonObject VersionResult(byte[] input)
{
    string? requested = null;
    try
    {
        requested = input.Length > 0 ? JsonNode.Parse(input)?["cniVersion"]?.GetValue<string>() : null;
    }
    catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
    {
    }
    var supported = new JsonArray();
    foreach (var v in CniVersions.Supported) supported.Add((JsonNode?)JsonValue.Create(v));
    return new JsonObject { ["cniVersion"] = requested ?? CniVersions.Latest, ["supportedVersions"] = supported };
}

static JsonObject Error(string version, int code, string message, string details)
{
    var error = new JsonObject { ["cniVersion"] = version, ["code"] = code, ["msg"] = message };
    if (details.Length > 0) error["details"] = details;
    return error;
}

static void Write(Stream stdout, JsonObject result)
{
    // Plain text for people reading it: the output is JSON for a runtime, never embedded in HTML.
    using (var writer = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
    {
        result.WriteTo(writer);
    }
    stdout.WriteByte((byte)'\n');
    stdout.Flush();
}
