using System.Globalization;
using System.Text;
using ControlPlane.Contracts.V1;
using Google.Protobuf;

namespace ControlPlane.Cli.Bench;

/// <summary>
/// The objects both sides write: in one namespace, 80% endpoints, 10% services and 10% network
/// policies (the namespace, network and node they refer to exist beforehand), as protobuf
/// messages for the API client and as one multi-document YAML manifest for netctl.
/// </summary>
internal static class Workload
{
    public static List<IMessage> Objects(string ns, string network, string node, int count)
    {
        var objects = new List<IMessage>(count);
        for (var i = 0; i < count; i++)
        {
            var app = $"app-{i % 100}";
            objects.Add((i % 10) switch
            {
                8 => new Service
                {
                    Metadata = new ObjectMeta { Namespace = ns, Name = $"svc-{i}" },
                    Spec = new ServiceSpec { Network = network, Selector = { ["app"] = app }, Ports = { new ServicePort { Name = "http", Port = 80, TargetPortName = "http" } } },
                },
                9 => new NetworkPolicy
                {
                    Metadata = new ObjectMeta { Namespace = ns, Name = $"pol-{i}" },
                    Spec = new NetworkPolicySpec
                    {
                        PodSelector = new LabelSelector { MatchLabels = { ["app"] = app } },
                        Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["role"] = "client" } } } }, Ports = { new NetworkPolicyPort { Name = "http" } } } },
                    },
                },
                _ => new Endpoint
                {
                    Metadata = new ObjectMeta { Namespace = ns, Name = $"ep-{i}", Labels = { ["app"] = app } },
                    Spec = new EndpointSpec { Network = network, Node = node, Ready = true, Ports = { new NamedPort { Name = "http", Port = 8080 } } },
                },
            });
        }
        return objects;
    }

    /// <summary>The same objects as YAML documents, written the way a person would (Kubernetes spelling).</summary>
    public static string Yaml(IEnumerable<IMessage> objects)
    {
        var text = new StringBuilder();
        foreach (var o in objects)
        {
            text.Append("---\napiVersion: controlplane/v1\n");
            switch (o)
            {
                case Endpoint e:
                    text.Append(CultureInfo.InvariantCulture, $"kind: Endpoint\nmetadata:\n  namespace: {e.Metadata.Namespace}\n  name: {e.Metadata.Name}\n  labels:\n    app: {e.Metadata.Labels["app"]}\n");
                    text.Append(CultureInfo.InvariantCulture, $"spec:\n  network: {e.Spec.Network}\n  node: {e.Spec.Node}\n  ready: true\n  ports:\n    - name: http\n      port: 8080\n");
                    break;
                case Service s:
                    text.Append(CultureInfo.InvariantCulture, $"kind: Service\nmetadata:\n  namespace: {s.Metadata.Namespace}\n  name: {s.Metadata.Name}\n");
                    text.Append(CultureInfo.InvariantCulture, $"spec:\n  network: {s.Spec.Network}\n  selector:\n    app: {s.Spec.Selector["app"]}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n");
                    break;
                case NetworkPolicy p:
                    text.Append(CultureInfo.InvariantCulture, $"kind: NetworkPolicy\nmetadata:\n  namespace: {p.Metadata.Namespace}\n  name: {p.Metadata.Name}\n");
                    text.Append(CultureInfo.InvariantCulture, $"spec:\n  podSelector:\n    matchLabels:\n      app: {p.Spec.PodSelector.MatchLabels["app"]}\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              role: client\n      ports:\n        - port: http\n");
                    break;
            }
        }
        return text.ToString();
    }
}
