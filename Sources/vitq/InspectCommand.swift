import ArgumentParser
import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant

/// `vitq inspect`: what a model file holds (a float ViT/DeiT or Swin, or a quantized file).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Print a model's family, dimensions, parameter count and tensors.")

    @Argument(help: "Model file (.safetensors).")
    var model: String
    @OptionGroup var modelOptions: ModelOptions

    func run() throws {
        try reportingErrors {
            let file = try SafeTensorsFile(path: model)
            print("file        \(model)")
            if QModelFile.isQuantized(file) {
                let (q, prov) = try QModelFile.read(file)
                let m = q.makeModel(.integer)
                let quantized = q.linear.values.filter { if case .quantized = $0 { return true } else { return false } }.count
                let attention = q.quantizedAttention
                print("family      \(m.familyName), quantized (\(QModelFile.formatName) version \(QModelFile.version))")
                print("source      \(prov.sourceName) (sha256 \(prov.sourceSHA256))")
                print("recipe      \(prov.recipeJSON)")
                print("quantized   \(quantized) of \(q.linear.count) linear ops; attention products in \(attention.quantized) of \(attention.total) blocks")
                printPreprocess(m.preprocess)
            } else if ModelLoader.isSwin(file) {
                let swin = try ModelLoader.loadFloat(file: file, overrides: modelOptions.overrides) as! SwinTransformer
                let c = swin.config
                print("family      Swin")
                print("dimensions  embed \(c.embedDim), depths \(c.depths), heads \(c.numHeads), window \(c.windowSize), patch \(c.patchSize), image \(c.imgSize), classes \(c.numClasses)")
                printPreprocess(swin.preprocess)
                print("parameters  \(swin.parameterCount)")
            } else {
                let spec = try ModelConfigResolver.resolve(file: file, overrides: modelOptions.overrides)
                let vit = try VisionTransformer(file: file, spec: spec)
                let c = spec.vit
                print("family      \(spec.family.rawValue)")
                print("config      \(spec.configSource)")
                print("dimensions  embed \(c.embedDim), depth \(c.depth), heads \(c.numHeads) (head dim \(c.headDim)), mlp \(c.mlpHidden), patch \(c.patchSize), image \(c.imgSize), tokens \(c.tokens), classes \(c.numClasses)")
                print("heads from  \(spec.headsSource)")
                printPreprocess(spec.preprocess)
                print("parameters  \(vit.parameterCount)")
            }
            print("tensors     \(file.tensors.count)")
            let w = file.names.map(\.count).max() ?? 10
            for name in file.names {
                let i = file.tensors[name]!
                print("  " + name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + i.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + " \(i.shape)")
            }
        }
    }

    func printPreprocess(_ p: PreprocessConfig) {
        print("preprocess  resize shorter side to \(p.resizeShorterSide) (\(p.interpolation)), crop \(p.inputSize), mean \(p.mean), std \(p.std)")
    }
}
