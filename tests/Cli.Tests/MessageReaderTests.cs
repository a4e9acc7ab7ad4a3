using ControlPlane.Cli.Manifests;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Tests;

/// <summary>The manifest mapping in process: which spellings are accepted, and that a wrong one names its field and line.</summary>
public sealed class MessageReaderTests
{
    private static (List<ManifestDocument> Documents, List<ManifestProblem> Problems) Read(string yaml)
    {
        var documents = new List<ManifestDocument>();
        var problems = new List<ManifestProblem>();
        ManifestReader.ReadText("test.yaml", new StringReader(yaml), documents, problems);
        return (documents, problems);
    }

    [Fact]
    public void Read_KubernetesAndProtoSpellings_GiveTheSameMessage()
    {
        var (camel, p1) = Read("""
            apiVersion: controlplane/v1
            kind: Service
            metadata: {namespace: shop, name: web, uid: ignored, creationTimestamp: "2020-01-01T00:00:00Z"}
            spec:
              type: ClusterIP
              network: blue
              ipFamilyPolicy: RequireDualStack
              clusterIPs: [10.96.0.10]
              sessionAffinity: ClientIP
              ports: [{name: http, port: 80, targetPort: 8080, protocol: udp}]
            status: {cluster_ips: [1.2.3.4]}
            """);
        var (snake, p2) = Read("""
            apiVersion: controlplane/v1
            kind: Service
            metadata: {namespace: shop, name: web}
            spec:
              type: CLUSTER_IP
              network: blue
              ip_family_policy: RequireDualStack
              cluster_ips: [10.96.0.10]
              session_affinity: CLIENT_IP
              ports: [{name: http, port: 80, target_port_number: 8080, protocol: UDP}]
            """);
        Assert.Empty(p1);
        Assert.Empty(p2);
        Assert.Equal(snake[0].Message, camel[0].Message);
        var service = (Service)camel[0].Message;
        Assert.Null(service.Status);
        Assert.Equal(ServiceType.ClusterIp, service.Spec.Type);
        Assert.Equal(Protocol.Udp, service.Spec.Ports[0].Protocol);
    }

    /// <summary>
    /// An unquoted value that YAML reads as another type (a boolean, a number, null) is no string:
    /// as a label value or in a string field it is refused naming the field and saying to quote
    /// it (Kubernetes refuses it too), where netctl stored its text ("null" for null). Quoted, each
    /// is the string it spells; and netctl's own YAML output quotes them, so it applies back.
    /// </summary>
    [Fact]
    public void Read_UnquotedValuesOfAnotherType_AreNoStrings()
    {
        var (_, problems) = Read("""
            apiVersion: controlplane/v1
            kind: Namespace
            metadata: {name: lbl, labels: {a: true, b: 1, c: null, d: 1.5, e: 0x1F, f: 1e3, g: yes, h: ~, i: on, ok: v1.2}}
            ---
            apiVersion: controlplane/v1
            kind: Endpoint
            metadata: {namespace: shop, name: e}
            spec: {network: blue, node: 123}
            """);
        Assert.Equal(
        [
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.a: must be a string (is 'true', which YAML reads as a boolean: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.b: must be a string (is '1', which YAML reads as a number: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.c: must be a string (is 'null', which YAML reads as null: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.d: must be a string (is '1.5', which YAML reads as a number: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.e: must be a string (is '0x1F', which YAML reads as a number: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.f: must be a string (is '1e3', which YAML reads as a number: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.g: must be a string (is 'yes', which YAML reads as a boolean: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.h: must be a string (is '~', which YAML reads as null: quote it)",
            "test.yaml: document 1 (Namespace lbl) (line 3): metadata.labels.i: must be a string (is 'on', which YAML reads as a boolean: quote it)",
            "test.yaml: document 2 (Endpoint shop/e) (line 8): spec.node: must be a string (is '123', which YAML reads as a number: quote it)",
        ], problems.Select(p => p.ToString()));

        var (documents, quoted) = Read("""
            apiVersion: controlplane/v1
            kind: Namespace
            metadata: {name: lbl, labels: {a: "true", b: '1', c: "null", d: "1.5", g: "yes", ok: v1.2}}
            """);
        Assert.Empty(quoted);
        Assert.Equal(new Dictionary<string, string> { ["a"] = "true", ["b"] = "1", ["c"] = "null", ["d"] = "1.5", ["g"] = "yes", ["ok"] = "v1.2" },
            ((Namespace)documents[0].Message).Metadata.Labels);
    }

    [Fact]
    public void Read_PolicyShorthands_MapToPeersAndPortAlternatives()
    {
        var (documents, problems) = Read("""
            apiVersion: controlplane/v1
            kind: NetworkPolicy
            metadata: {namespace: shop, name: p}
            spec:
              podSelector: {}
              ingress:
                - from: [{namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a]}]}}]
                  ports: [{port: http}, {port: 5000, endPort: 5010}]
              egress:
                - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]
            """);
        Assert.Empty(problems);
        var spec = ((NetworkPolicy)documents[0].Message).Spec;
        Assert.Equal("team", spec.Ingress[0].Peers[0].NamespaceSelector.MatchExpressions[0].Key);
        Assert.Equal("http", spec.Ingress[0].Ports[0].Name);
        Assert.Equal((5000u, 5010u), (spec.Ingress[0].Ports[1].Number, spec.Ingress[0].Ports[1].EndPort));
        Assert.Equal("10.0.0.0/8", spec.Egress[0].Peers[0].IpBlock.Except[0]);
    }

    /// <summary>A NetworkPolicy manifest as written for Kubernetes (its documentation's example) is read as it is.</summary>
    [Fact]
    public void Read_KubernetesNetworkPolicyManifest_AsItIs()
    {
        var (documents, problems) = Read("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: test-network-policy
              namespace: default
            spec:
              podSelector:
                matchLabels:
                  role: db
              policyTypes:
              - Ingress
              - Egress
              ingress:
              - from:
                - ipBlock:
                    cidr: 172.17.0.0/16
                    except:
                    - 172.17.1.0/24
                - namespaceSelector:
                    matchLabels:
                      project: myproject
                - podSelector:
                    matchLabels:
                      role: frontend
                ports:
                - protocol: TCP
                  port: 6379
              egress:
              - to:
                - ipBlock:
                    cidr: 10.0.0.0/24
                ports:
                - protocol: TCP
                  port: 5978
            """);
        Assert.Empty(problems);
        var policy = Assert.IsType<NetworkPolicy>(Assert.Single(documents).Message);
        Assert.Equal(("default", "test-network-policy"), (policy.Metadata.Namespace, policy.Metadata.Name));
        Assert.Equal("db", policy.Spec.PodSelector.MatchLabels["role"]);
        Assert.Equal(3, policy.Spec.Ingress[0].Peers.Count);
        Assert.Equal(["172.17.1.0/24"], policy.Spec.Ingress[0].Peers[0].IpBlock.Except);
        Assert.Equal("10.0.0.0/24", policy.Spec.Egress[0].Peers[0].IpBlock.Cidr);
    }

    [Fact]
    public void Read_ServiceExportInTheMultiClusterServicesStyle_IsAServiceExport()
    {
        var (documents, problems) = Read("""
            apiVersion: multicluster.x-k8s.io/v1alpha1
            kind: ServiceExport
            metadata: {name: web, namespace: shop}
            """);
        Assert.Empty(problems);
        var export = Assert.IsType<ServiceExport>(Assert.Single(documents).Message);
        Assert.Equal(("shop", "web"), (export.Metadata.Namespace, export.Metadata.Name));

        // Kubernetes' apiVersion is accepted for the kind Kubernetes has, not for others.
        var (_, wrong) = Read("""
            apiVersion: multicluster.x-k8s.io/v1alpha1
            kind: Service
            metadata: {name: web, namespace: shop}
            spec: {network: blue}
            """);
        Assert.Equal(["test.yaml: document 1 (line 1): apiVersion: 'multicluster.x-k8s.io/v1alpha1' is not controlplane/v1"], wrong.Select(p => p.ToString()));
    }

    [Fact]
    public void Read_WrongTypesAndMisplacedShorthands_NameFieldAndLine()
    {
        var (_, problems) = Read("""
            apiVersion: controlplane/v1
            kind: NetworkPolicy
            metadata: {namespace: shop, name: p, labels: [a]}
            spec:
              ingress:
                - to: []
              egress: {}
              policyTypes: Ingress
            """);
        Assert.Equal(
        [
            "test.yaml: document 1 (NetworkPolicy shop/p) (line 3): metadata.labels: must be a mapping of names to values",
            "test.yaml: document 1 (NetworkPolicy shop/p) (line 6): spec.ingress[0].to: unknown field (the fields of NetworkPolicyRule are peers, ports)",
            "test.yaml: document 1 (NetworkPolicy shop/p) (line 7): spec.egress: must be a list",
            "test.yaml: document 1 (NetworkPolicy shop/p) (line 8): spec.policyTypes: must be a list",
        ], problems.Select(p => p.ToString()));
    }

    /// <summary>A whole-number field given a word is told it needs a number, not a range only a number past any field's can break.</summary>
    [Fact]
    public void Read_AWordOrAHugeNumberForAWholeNumber_SaysWhichIsWrong()
    {
        var (_, word) = Read("apiVersion: controlplane/v1\nkind: Network\nmetadata: {name: n}\nspec: {vni: abc}\n");
        var (_, huge) = Read("apiVersion: controlplane/v1\nkind: Network\nmetadata: {name: n}\nspec: {vni: 99999999999}\n");

        Assert.Equal("test.yaml: document 1 (Network n) (line 4): spec.vni: must be a whole number (is 'abc')", Assert.Single(word).ToString());
        Assert.Equal("test.yaml: document 1 (Network n) (line 4): spec.vni: must be a whole number from 0 to 4294967295 (is '99999999999')", Assert.Single(huge).ToString());
    }

    /// <summary>
    /// A negative policy port is a number out of range, not a port name (outside tester AI:
    /// "port name '-1' must contain a letter").
    /// </summary>
    [Fact]
    public void Read_ANegativePolicyPort_IsANumberOutOfRange()
    {
        var (_, problems) = Read("apiVersion: controlplane/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n  ingress:\n  - ports: [{port: -1}]\n");
        Assert.Equal("test.yaml: document 1 (NetworkPolicy shop/p) (line 6): spec.ingress[0].ports[0].port: must be a whole number from 0 to 4294967295 (is '-1')", Assert.Single(problems).ToString());
    }
}
