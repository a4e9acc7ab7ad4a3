using System.Text;
using Grpc.Core;

namespace ControlPlane.Cli.Connection;

/// <summary>gRPC status codes as the gRPC documents spell them (FAILED_PRECONDITION).</summary>
internal static class StatusNames
{
    public static string Of(StatusCode code)
    {
        var name = code.ToString();
        var builder = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (i > 0 && char.IsUpper(name[i])) builder.Append('_');
            builder.Append(char.ToUpperInvariant(name[i]));
        }
        return builder.ToString();
    }

    /// <summary>"NOT_FOUND: endpoint 'shop/x' not found".</summary>
    public static string Describe(RpcException e) => $"{Of(e.StatusCode)}: {e.Status.Detail}";
}
